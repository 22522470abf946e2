"""The demo's form letters: a convocation, unjustified absences, an internship, a certificate."""

from __future__ import annotations

from hpmail.letters.models import Category
from hpmail.letters.service import save_letter

DEMO_LETTERS = (
    (
        Category.STUDENTS,
        "Convocation",
        "Convocation — {{ prenom }} {{ nom }}",
        "<p>{{ prenom }} {{ nom }},</p>"
        "<p>Vous êtes convoqué(e) au secrétariat pédagogique de {{ etablissement }} afin de faire "
        "le point sur votre scolarité en {{ promotion }}.</p>"
        "<p>Merci de vous présenter muni(e) de votre carte d'étudiant. En cas d'empêchement, "
        "prévenez le secrétariat par retour d'e-mail.</p>"
        "<p>Le secrétariat pédagogique</p>",
    ),
    (
        Category.ABSENCES,
        "Absences non justifiées",
        "Absences non justifiées — {{ prenom }} {{ nom }}",
        "<p>{{ prenom }} {{ nom }},</p>"
        "<p>Sauf erreur de notre part, vous avez été absent(e) {{ nombre_absences }} fois, "
        "soit {{ total_heures }} de cours, sans justificatif :</p>"
        "<ul>{% for absence in absences %}<li>{{ absence.date }}, {{ absence.horaire }} : "
        "{{ absence.cours }} ({{ absence.heures }}){% if absence.motif %} — "
        "{{ absence.motif }}{% endif %}</li>{% endfor %}</ul>"
        "<p>Nous vous remercions de transmettre un justificatif au secrétariat dans les huit "
        "jours. L'assiduité conditionne la validation de votre année en {{ promotion }}.</p>"
        "<p>Le secrétariat pédagogique</p>",
    ),
    (
        Category.INTERNSHIPS,
        "Convention de stage",
        "Convention de stage — {{ prenom }} {{ nom }} chez {{ entreprise }}",
        "<p>{{ prenom }} {{ nom }},</p>"
        "<p>Votre convention de stage au sein de l'entreprise <b>{{ entreprise }}</b> "
        "({{ adresse_entreprise }}) est enregistrée pour la période du {{ debut }} au "
        "{{ fin }}.</p>"
        "<p>Sujet : {{ sujet }}</p>"
        "<p>Votre tuteur en entreprise est {{ tuteur }}{% if email_tuteur %} "
        "({{ email_tuteur }}){% endif %}. Merci de nous retourner la convention signée par "
        "les trois parties avant le début du stage.</p>"
        "<p>Le bureau des stages</p>",
    ),
    (
        Category.STUDENTS,
        "Attestation de scolarité",
        "Attestation de scolarité — {{ prenom }} {{ nom }}",
        "<h2>Attestation de scolarité</h2>"
        "<p>Le chef d'établissement de {{ etablissement }} atteste que {{ prenom }} {{ nom }} "
        "est régulièrement inscrit(e) pour l'année en cours en {{ promotion }}"
        "{% if groupes %} (groupes {{ groupes }}){% endif %}.</p>"
        "<p>Attestation délivrée le {{ date_du_jour }} pour servir et valoir ce que de droit.</p>"
        "<p>Le chef d'établissement</p>",
    ),
)


def load_demo_letters(author) -> None:
    """Save the demo's form letters, written by ``author`` (the caller commits)."""
    for category, title, subject, body in DEMO_LETTERS:
        save_letter(None, category, title, subject, body, author)
