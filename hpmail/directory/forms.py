"""Forms of the directory: the CSV import and the selection of people in a list."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateTimeLocalField, HiddenField
from wtforms.validators import InputRequired

from hpmail.core.forms import IdsField
from hpmail.directory.people import positive_int

# A list page never posts more ids than this.
MAX_IDS_PER_POST = 1000


class ImportForm(FlaskForm):
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired(_l("Choose a CSV file."))],
        description=_l(
            "Columns: nom, prénom, e-mail, type (enseignant, étudiant, personnel), promotion, "
            "groupes (comma-separated), identifiant. Separator ; or , — UTF-8 or Windows-1252."
        ),
    )
    # The file kept from a first try whose rejected rows the admin agreed to leave out.
    token = HiddenField()


class AbsenceImportForm(ImportForm):
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired(_l("Choose a CSV file."))],
        description=_l(
            "Columns: étudiant (the student's id or « NOM Prénom »), date, début, fin, cours, "
            "motif, justifiée (oui or non), référence (the absence's own id, optional). "
            "Separator ; or , — UTF-8 or Windows-1252."
        ),
    )


class InternshipImportForm(ImportForm):
    file = FileField(
        _l("CSV file"),
        validators=[FileRequired(_l("Choose a CSV file."))],
        description=_l(
            "Columns: étudiant (the student's id or « NOM Prénom »), entreprise, adresse, "
            "tuteur, e-mail du tuteur, début, fin, sujet, référence (optional). "
            "Separator ; or , — UTF-8 or Windows-1252."
        ),
    )


class SelectionForm(FlaskForm):
    """What a list page posts to its selection: the action, the people shown and those ticked.

    The list's filter comes with it, read like the page's query string (``PeopleFilter``).
    """

    action = HiddenField(filters=[lambda value: value or "page"])
    shown = IdsField(limit=MAX_IDS_PER_POST, parse=positive_int)
    person_id = IdsField(limit=MAX_IDS_PER_POST, parse=positive_int)
    # The endpoint of the page the list is on (``lists.LIST_PAGES``), to answer with its links.
    list_page = HiddenField()


class RecordSelectionForm(SelectionForm):
    """What the absences or internships list posts to its selection: ``item_id`` is ticked."""

    item_id = IdsField(limit=MAX_IDS_PER_POST, parse=positive_int)


class ClearRefusalForm(FlaskForm):
    """« The address is valid again »: the mark the admin saw (when the server refused it), so
    that a replayed POST does not clear a newer refusal."""

    refused_at = DateTimeLocalField(
        format=["%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"],
        validators=[InputRequired(_l("Which refusal is meant is missing: reload the page."))],
    )
