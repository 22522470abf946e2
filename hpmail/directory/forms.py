"""Forms of the directory: the CSV import."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired


class ImportForm(FlaskForm):
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired(_l("Choose a CSV file."))],
        description=_l(
            "Columns: nom, prénom, e-mail, type (enseignant, étudiant, personnel), promotion, "
            "groupes (comma-separated), identifiant. Separator ; or , — UTF-8 or Windows-1252."
        ),
    )
