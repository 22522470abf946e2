"""The demo school's absences and internships: realistic, deterministic, bulk-inserted.

About two absences per student over the winter term (most students have 0 to 3, a few many), each
on one of the student's own courses at its time; internships for the cohorts that have them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import insert

from hpmail.core.text import fold
from hpmail.core.time import utcnow
from hpmail.directory.emails import email_status_of
from hpmail.directory.models import Absence, Internship, minutes_between
from hpmail.extensions import db

# A seed of their own, so that adding them changes nothing of the people and courses.
SEED = 20_240_911
TERM_START = date(2026, 1, 5)  # a Monday
TERM_WEEKS = 13
# (reason, weight, share justified)
REASONS = (
    ("Maladie", 34, 0.9),
    ("Non justifiée", 22, 0.0),
    ("Transport", 14, 0.7),
    ("Rendez-vous médical", 14, 0.95),
    ("Raison familiale", 8, 0.8),
    ("Convocation administrative", 4, 1.0),
    ("Compétition sportive", 4, 1.0),
)
# How many absences a student has: most 0 to 3, a few many.
ABSENCE_COUNTS = ((0, 34), (1, 20), (2, 16), (3, 12), (5, 8), (8, 6), (14, 3), (22, 1))

# (cohort, first day, weeks, subjects); the first day moves by up to a week per student.
INTERNSHIP_COHORTS = {
    "L3 Informatique": (date(2026, 4, 13), 10, ("Développement d'une application web",
                        "Automatisation des tests", "Migration vers le cloud",
                        "Tableau de bord de données")),
    "BTS SIO 1": (date(2026, 5, 18), 6, ("Support aux utilisateurs", "Maintenance du parc",
                  "Site vitrine", "Inventaire du réseau")),
    "BTS SIO 2": (date(2026, 1, 5), 6, ("Déploiement de postes", "Application de gestion",
                  "Supervision du réseau", "Sécurisation des sauvegardes")),
    "BTS MCO 1": (date(2026, 3, 2), 6, ("Animation commerciale", "Gestion des stocks",
                  "Relation client en magasin", "Merchandising")),
    "L2 Économie-Gestion": (date(2026, 6, 1), 6, ("Contrôle de gestion", "Étude de marché",
                            "Paie et ressources humaines", "Comptabilité fournisseurs")),
}  # fmt: skip
INTERNSHIP_SHARE = 0.53
COMPANIES = (
    ("Airbus", "2 rond-point Émile Dewoitine, 31700 Blagnac", "airbus.example"),
    (
        "Capgemini",
        "147 quai du Président Roosevelt, 92130 Issy-les-Moulineaux",
        "capgemini.example",
    ),
    ("Crédit Agricole", "12 place des États-Unis, 92120 Montrouge", "credit-agricole.example"),
    ("Decathlon", "4 boulevard de Mons, 59650 Villeneuve-d'Ascq", "decathlon.example"),
    ("Orange", "111 quai du Président Roosevelt, 92130 Issy-les-Moulineaux", "orange.example"),
    ("SNCF Voyageurs", "9 rue Jean-Philippe Rameau, 93200 Saint-Denis", "sncf.example"),
    ("Thales", "4 rue de la Verrerie, 92190 Meudon", "thales.example"),
    ("Leroy Merlin", "rue Chanzy, 59260 Lezennes", "leroymerlin.example"),
    ("Carrefour Market", "93 avenue de Paris, 91300 Massy", "carrefour.example"),
    ("Mairie de Rennes", "place de la Mairie, 35000 Rennes", "rennes.example"),
    ("Boulangerie Au Bon Pain", "14 rue de la République, 69002 Lyon", None),
    ("Garage Martin et Fils", "52 route de Toulouse, 33400 Talence", None),
    ("Cabinet comptable Lefèvre", "8 rue Nationale, 37000 Tours", "cabinet-lefevre.example"),
    ("Clinique Saint-Joseph", "26 boulevard Louvain, 13008 Marseille", "clinique-sj.example"),
    ("Ubisoft", "2 rue du Chêne Heleuc, 56910 Carentoir", "ubisoft.example"),
    ("OVHcloud", "2 rue Kellermann, 59100 Roubaix", "ovhcloud.example"),
    ("Lycée Jean Moulin (service informatique)", "1 place Jean Moulin, 75014 Paris", None),
    ("Librairie Le Chat Pitre", "3 rue des Carmes, 45000 Orléans", None),
    ("Société Générale", "29 boulevard Haussmann, 75009 Paris", "socgen.example"),
    ("Michelin", "23 place des Carmes-Déchaux, 63000 Clermont-Ferrand", "michelin.example"),
    ("La Poste", "9 rue du Colonel Pierre Avia, 75015 Paris", "laposte.example"),
    ("Intermarché", "24 rue Auguste Chabrières, 75015 Paris", "intermarche.example"),
    ("Agence Pixel & Cie", "17 rue Sainte-Catherine, 33000 Bordeaux", "pixel-cie.example"),
    ("Mutuelle des Étudiants", "79 rue Saint-Lazare, 75009 Paris", "mde.example"),
)


@dataclass
class DemoRecords:
    absences: int = 0
    internships: int = 0


def build_records(
    students: list[tuple[int, int, list[int]]],
    courses_of: dict[tuple[str, int], list[tuple[int, str, dict]]],
    cohort_names: dict[int, str],
    names: tuple[list[str], list[str]],
) -> DemoRecords:
    """Insert the absences and internships of ``students`` (id, cohort, group ids).

    ``courses_of`` gives, for ("cohort", id) or ("group", id), its courses as (id, subject, weekly
    slot); ``names`` the first and last names tutors are made of.
    """
    rng = random.Random(SEED)
    absences = _absences(rng, students, courses_of)
    internships = _internships(rng, students, cohort_names, names)
    now = utcnow()
    for row in absences + internships:
        row["created_at"] = now
    # Core inserts of the tables: one executemany each (the ORM's bulk insert splits the rows
    # into many statements by the columns they leave empty).
    db.session.execute(insert(Absence.__table__), absences)
    db.session.execute(insert(Internship.__table__), internships)
    return DemoRecords(len(absences), len(internships))


def _absences(rng, students, courses_of) -> list[dict]:
    counts, count_weights = zip(*ABSENCE_COUNTS, strict=True)
    reasons, reason_weights = [r[0] for r in REASONS], [r[1] for r in REASONS]
    justified_share = {reason: share for reason, _w, share in REASONS}
    rows = []
    for person_id, cohort_id, group_ids in students:
        owners = [("cohort", cohort_id), *(("group", gid) for gid in group_ids)]
        courses = [course for owner in owners for course in courses_of.get(owner, ())]
        wanted = rng.choices(counts, count_weights)[0]
        if not courses or not wanted:
            continue
        taken: set[tuple] = set()
        # A student with many absences tends to miss the same weeks (several courses a day).
        weeks = rng.sample(range(TERM_WEEKS), k=min(TERM_WEEKS, max(1, wanted // 2 + 1)))
        for _n in range(wanted):
            course_id, subject, slot = rng.choice(courses)
            day = TERM_START + timedelta(weeks=rng.choice(weeks), days=slot["weekday"])
            if (day, slot["start_time"]) in taken:
                continue
            taken.add((day, slot["start_time"]))
            reason = rng.choices(reasons, reason_weights)[0]
            rows.append(
                {
                    "person_id": person_id,
                    "day": day,
                    "start_time": slot["start_time"],
                    "end_time": slot["end_time"],
                    "minutes": minutes_between(slot["start_time"], slot["end_time"]),
                    "course_id": course_id,
                    "course_label": subject,
                    "reason": reason,
                    "justified": rng.random() < justified_share[reason],
                }
            )
    return rows


def _internships(rng, students, cohort_names, names) -> list[dict]:
    first_names, last_names = names
    rows = []
    for person_id, cohort_id, _groups in students:
        base = cohort_names.get(cohort_id, "").split(" – ")[0]
        if base not in INTERNSHIP_COHORTS or rng.random() >= INTERNSHIP_SHARE:
            continue
        first_day, weeks, subjects = INTERNSHIP_COHORTS[base]
        company, address, domain = rng.choice(COMPANIES)
        start = first_day + timedelta(weeks=rng.choice((0, 0, 0, 1)))
        tutor_first, tutor_last = rng.choice(first_names), rng.choice(last_names)
        tutor_email = None
        if domain and rng.random() < 0.85:
            tutor_email = f"{fold(tutor_first)}.{fold(tutor_last)}@{domain}".replace(" ", "-")
            if rng.random() < 0.04:
                tutor_email = tutor_email.replace("@", "@@")
        rows.append(
            {
                "person_id": person_id,
                "company": company,
                "company_key": fold(company)[:200],
                "company_address": address,
                "tutor_name": f"{tutor_first} {tutor_last}",
                "tutor_email": tutor_email,
                "tutor_email_status": str(email_status_of(tutor_email)),
                "start_date": start,
                "end_date": start + timedelta(weeks=weeks, days=-3),
                "subject": rng.choice(subjects),
            }
        )
    return rows
