"""Generation.seconds and Series.seconds hold numbers: integer columns instead of text.

The rows keep their values ("4" becomes 4). PostgreSQL converts with `USING "seconds"::integer`
and SQLite copies into the rebuilt table. A value that is not a whole number would fail on
PostgreSQL and be kept as text by SQLite, so it stops the migration on both, naming the rows.
"""

from django.db import migrations, models


def check_whole_numbers(apps, schema_editor):
    problems = []
    for name in ("Generation", "Series"):
        model = apps.get_model("generations", name)
        bad = [pk for pk, seconds in model.objects.values_list("pk", "seconds") if not str(seconds).isdigit()]
        if bad:
            problems.append(f"{name} {', '.join(map(str, bad[:20]))}{' …' if len(bad) > 20 else ''}")
    if problems:
        raise RuntimeError(f"seconds is not a whole number in: {'; '.join(problems)}. Fix those rows, then migrate.")


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0007_protocol_choices_from_the_registry"),
    ]

    operations = [
        migrations.RunPython(check_whole_numbers, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="generation",
            name="seconds",
            field=models.PositiveIntegerField(),
        ),
        migrations.AlterField(
            model_name="series",
            name="seconds",
            field=models.PositiveIntegerField(default=4),
        ),
    ]
