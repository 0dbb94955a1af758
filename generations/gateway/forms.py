"""The form that makes a personal API token."""

from django import forms

from generations.gateway.models import ApiToken


class TokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["name", "monthly_cap"]
        labels = {"monthly_cap": "Monthly spending cap (USD)"}
        help_texts = {
            "name": "What will use it, e.g. “nightly batch” or “n8n”.",
            "monthly_cap": "What this token's videos may commit per calendar month. Blank: only your budgets apply.",
        }
        widgets = {"monthly_cap": forms.NumberInput(attrs={"min": "0", "step": "0.01", "placeholder": "no cap"})}

    def clean_monthly_cap(self):
        cap = self.cleaned_data["monthly_cap"]
        if cap is not None and cap < 0:
            raise forms.ValidationError("A cap cannot be negative.")
        return cap
