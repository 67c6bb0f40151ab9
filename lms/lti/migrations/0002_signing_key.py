"""Give the tool its first signing key, so that its JWKS, deep links and roster requests work
from the first deploy; `manage.py rotate_keys` replaces it later."""

from django.db import migrations


def create_first_key(apps, schema_editor):
    from jwcrypto.jwk import JWK

    Key = apps.get_model("lti_tool", "Key")
    if Key.objects.exists():
        return
    key = JWK.generate(kty="RSA", size=2048)
    Key.objects.create(
        public_key=key.export_to_pem().decode(),
        private_key=key.export_to_pem(private_key=True, password=None).decode(),
    )


class Migration(migrations.Migration):
    dependencies = [
        ("lms_lti", "0001_initial"),
        ("lti_tool", "0008_ltideployment_pns_url_and_more"),
    ]

    operations = [migrations.RunPython(create_first_key, migrations.RunPython.noop)]
