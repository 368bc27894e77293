"""Only in the coop-django:v2 image (scripts/build-images.sh copies it into the migrations): a
schema change with a data step that goes wrong, as the rollback-with-restore test needs. It adds
a table and deletes every visit recorded before it; a rollback with --restore-db brings the
visits back and the table goes."""
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("site", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name="Note",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("text", models.CharField(max_length=200)),
            ],
        ),
        migrations.RunSQL("DELETE FROM site_visit", reverse_sql=migrations.RunSQL.noop),
    ]
