"""`__in` on integer columns ignores ids no database column can hold, as Django's own `exact`,
`gt` and `lt` do (IntegerFieldOverflow) — but `in` does not, in Django 5.2.

Without this a 20-digit id in any multiple-choice field (a form's `backends`, the admin's
`characters`) reaches SQLite, which raises OverflowError: a 500 instead of "Select a valid choice".
An id out of range names no row, so dropping it changes no answer; one lookup fixes every form,
the admin and any view, rather than a field subclass each of them must remember to use.
"""

from django.core.exceptions import EmptyResultSet
from django.db.models import IntegerField
from django.db.models.lookups import In


@IntegerField.register_lookup
class IntegerFieldIn(In):
    def process_rhs(self, compiler, connection):
        if self.rhs_is_direct_value():
            low, high = connection.ops.integer_field_range(self.lhs.output_field.get_internal_type())
            values = [
                value
                for value in self.rhs
                if not isinstance(value, int) or ((low is None or value >= low) and (high is None or value <= high))
            ]
            if not values:
                raise EmptyResultSet
            self.rhs = values
        return super().process_rhs(compiler, connection)
