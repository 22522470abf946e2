"""The demo school's directory: deterministic, realistic French data, bulk-inserted.

``build_school(1)`` makes ~1,500 students in 12 cohorts, 90 teachers, 25 staff, ~400 weekly
courses, ~3,000 absences and ~300 internships; ``build_school(13)`` ~20,000 students for the
benchmarks.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import date, time, timedelta

from sqlalchemy import insert

from hpmail.core.text import fold
from hpmail.directory.demo_records import build_records
from hpmail.directory.emails import email_status_of
from hpmail.directory.models import (
    Cohort,
    Course,
    CourseSession,
    CourseSlot,
    Group,
    Person,
    PersonKind,
    course_cohort,
    course_group,
    course_teacher,
    insert_many,
    person_group,
)
from hpmail.directory.text import search_text_for
from hpmail.extensions import db

log = logging.getLogger(__name__)

SEED = 20_240_902
DOMAIN = "lycee-demo.fr"
STUDENT_DOMAIN = "etu.lycee-demo.fr"
STUDENTS_PER_COHORT = 125
TD_GROUPS, TP_PER_TD = 4, 2

_FIRST_NAMES = (
    "Emma Jade Louise Alice Chloé Lina Léa Rose Anna Mila Inès Ambre Julia Mia Léna Manon "
    "Juliette Lou Zoé Camille Agathe Jeanne Lucie Éva Nina Sarah Romane Inaya Charlotte Léonie "
    "Romy Adèle Iris Louna Clémence Margaux Héloïse Élise Anaïs Océane Maëlys Noémie Émilie "
    "Aurélie Célia Gabriel Léo Raphaël Arthur Louis Jules Adam Maël Lucas Hugo Noah Liam Gabin "
    "Sacha Paul Nathan Aaron Mohamed Éthan Tom Léon Théo Noé Victor Martin Axel Timéo Marius "
    "Baptiste Enzo Mathis Clément Antoine Maxime Alexandre Thomas Nicolas Julien Quentin Romain "
    "Valentin Benoît Jérôme Loïc Gaëtan Joël Mickaël Stéphane François Frédéric Hélène Bérénice "
    "Solène Gaëlle Noëlle"
)
FIRST_NAMES = _FIRST_NAMES.split()
_LAST_NAMES = (
    "Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel Lefèvre "
    "Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine Rousseau "
    "Vincent Muller Lefebvre Faure André Mercier Blanc Guérin Boyer Garnier Chevalier François "
    "Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry Roussel Mathieu Gautier "
    "Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer Dufour Meunier Brun Blanchard "
    "Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martinez Gérard Roche Renard "
    "Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas Lacroix "
    "Olivier Philippe Bourgeois Pierre Benoît Rey Leclerc Payet Rolland Lecomte Lévêque Besnard "
    "Hébert Prévost Bénard Château Da-Silva Le-Gall N'Diaye Ben-Saïd De-La-Tour"
)
LAST_NAMES = _LAST_NAMES.split()
# (cohort, its subjects)
COHORTS = (
    ("L1 Informatique", ("Algorithmique", "Programmation Python", "Architecture des ordinateurs",
                         "Mathématiques discrètes", "Anglais", "Projet tutoré", "Systèmes")),
    ("L2 Informatique", ("Bases de données", "Programmation objet", "Réseaux",
                         "Systèmes d'exploitation", "Anglais", "Probabilités", "Projet tutoré")),
    ("L3 Informatique", ("Compilation", "Génie logiciel", "Sécurité informatique",
                         "Intelligence artificielle", "Anglais", "Stage et insertion", "Web")),
    ("L1 Mathématiques", ("Analyse", "Algèbre linéaire", "Logique", "Informatique",
                          "Anglais", "Méthodologie", "Physique")),
    ("L2 Mathématiques", ("Analyse", "Algèbre", "Probabilités", "Statistiques",
                          "Anglais", "Calcul scientifique", "Géométrie")),
    ("L1 Économie-Gestion", ("Microéconomie", "Macroéconomie", "Comptabilité", "Droit civil",
                             "Anglais", "Statistiques", "Histoire économique")),
    ("L2 Économie-Gestion", ("Finance d'entreprise", "Marketing", "Droit des affaires",
                             "Économétrie", "Anglais", "Ressources humaines", "Espagnol")),
    ("BTS SIO 1", ("Cybersécurité", "Développement web", "Réseaux", "Culture économique",
                   "Anglais", "Mathématiques", "Culture générale")),
    ("BTS SIO 2", ("Cybersécurité", "Administration systèmes", "Développement d'applications",
                   "Culture économique", "Anglais", "Mathématiques", "Culture générale")),
    ("BTS MCO 1", ("Relation client", "Gestion commerciale", "Management d'équipe",
                   "Culture économique", "Anglais", "Culture générale", "Animation commerciale")),
    ("Terminale STMG", ("Philosophie", "Histoire-géographie", "Mathématiques", "Management",
                        "Anglais", "Espagnol", "Droit et économie")),
    ("Terminale générale", ("Philosophie", "Histoire-géographie", "Mathématiques",
                            "Physique-chimie", "Anglais", "Sciences économiques et sociales",
                            "Éducation physique")),
)  # fmt: skip
STAFF_TITLES = 25
ROOMS = (
    ["Amphi A", "Amphi B", "Amphi C"]
    + [f"B{floor}{n:02d}" for floor in (1, 2, 3) for n in range(1, 13)]
    + [f"Salle info C{n}" for n in range(1, 9)]
)
MALFORMED = (
    "{first}.{last}@{domain}.",
    "{first}.{last}@@{domain}",
    "{first} {last}@{domain}",
    "{first}.{last}.{domain}",
    "{first}.{last}@",
)


@dataclass
class DemoSchool:
    """What was built: counts, and the person id of some addresses (to link the demo users)."""

    students: int = 0
    teachers: int = 0
    staff: int = 0
    cohorts: int = 0
    courses: int = 0
    absences: int = 0
    internships: int = 0
    person_ids: dict[str, int] = field(default_factory=dict, repr=False)


class _People:
    """Makes people rows with unique addresses, ~5 % without one and ~1 % malformed."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.used: set[str] = set()
        self.rows: list[dict] = []

    def address(self, first: str, last: str, domain: str) -> str:
        local = f"{fold(first)}.{fold(last)}".replace(" ", "-").replace("'", "")
        candidate, n = f"{local}@{domain}", 1
        while candidate in self.used:
            n += 1
            candidate = f"{local}{n}@{domain}"
        self.used.add(candidate)
        return candidate

    def add(self, kind, external_id, first, last, domain, cohort_id=None, email=None) -> dict:
        roll = self.rng.random()
        if email is None and roll < 0.05:
            email = None
        elif email is None and roll < 0.06:
            pattern = self.rng.choice(MALFORMED)
            email = pattern.format(first=fold(first), last=fold(last), domain=domain)
        elif email is None:
            email = self.address(first, last, domain)
        row = {
            "kind": kind,
            "external_id": external_id,
            "last_name": last,
            "first_name": first,
            "email": email,
            "email_status": str(email_status_of(email)),
            "cohort_id": cohort_id,
            "search_text": search_text_for(last, first, email),
            "last_name_key": fold(last),
            "first_name_key": fold(first),
        }
        self.rows.append(row)
        return row

    def insert(self) -> list[int]:
        return insert_many(Person, self.rows, ("kind", "external_id"))


def _name(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES).replace("-", " ")


def build_school(scale: int = 1) -> DemoSchool:
    """Build the demo directory (deterministic for a given scale); the caller commits."""
    rng = random.Random(SEED)
    school = DemoSchool()
    cohort_specs = [
        (name if copy == 0 else f"{name} – site {copy + 1}", subjects)
        for copy in range(max(1, scale))
        for name, subjects in COHORTS
    ]
    # Cohorts and their TD/TP groups.
    cohort_ids = insert_many(
        Cohort, [{"name": name} for name, _subjects in cohort_specs], ("name",)
    )
    group_rows = [
        {"cohort_id": cid, "name": name}
        for cid in cohort_ids
        for td in range(1, TD_GROUPS + 1)
        for name in [f"TD{td}"] + [f"TP{(td - 1) * TP_PER_TD + k}" for k in range(1, TP_PER_TD + 1)]
    ]
    group_ids = insert_many(Group, group_rows, ("cohort_id", "name"))
    groups_of: dict[int, dict[str, int]] = {}
    for row, gid in zip(group_rows, group_ids, strict=True):
        groups_of.setdefault(row["cohort_id"], {})[row["name"]] = gid

    # Teachers and staff first (the demo users are among them), then students.
    people = _People(rng)
    staff_people = [("Sophie", "Bernard"), ("Agnès", "Martin")]
    for n in range(1, 25 * max(1, scale) + 1):
        first, last = staff_people[n - 1] if n <= len(staff_people) else _name(rng)
        email = people.address(first, last, DOMAIN) if n <= len(staff_people) else None
        people.add(PersonKind.STAFF, f"A{n:05d}", first, last, DOMAIN, email=email)
    teacher_count = 90 * max(1, scale)
    for n in range(1, teacher_count + 1):
        first, last = ("Julien", "Petit") if n == 1 else _name(rng)
        email = people.address(first, last, DOMAIN) if n == 1 else None
        people.add(PersonKind.TEACHER, f"P{n:05d}", first, last, DOMAIN, email=email)
    student_groups: list[tuple[int, str, str]] = []
    number = 0
    for cid in cohort_ids:
        size = STUDENTS_PER_COHORT + rng.randint(-15, 15)
        for k in range(size):
            number += 1
            first, last = _name(rng)
            people.add(PersonKind.STUDENT, f"E{number:06d}", first, last, STUDENT_DOMAIN, cid)
            td = k * TD_GROUPS // size + 1
            tp = (td - 1) * TP_PER_TD + (k % TP_PER_TD) + 1
            student_groups.append((cid, f"TD{td}", f"TP{tp}"))
    ids = people.insert()
    staff_count = 25 * max(1, scale)
    teacher_ids = ids[staff_count : staff_count + teacher_count]
    student_ids = ids[staff_count + teacher_count :]
    db.session.execute(
        insert(person_group),
        [
            {"person_id": pid, "group_id": groups_of[cid][name]}
            for pid, (cid, td, tp) in zip(student_ids, student_groups, strict=True)
            for name in (td, tp)
        ],
    )
    school.person_ids = {row["email"]: pid for row, pid in zip(people.rows, ids, strict=True)}
    courses_of = _build_courses(rng, cohort_specs, cohort_ids, groups_of, teacher_ids)
    records = build_records(
        [
            (pid, cid, [groups_of[cid][td], groups_of[cid][tp]])
            for pid, (cid, td, tp) in zip(student_ids, student_groups, strict=True)
        ],
        courses_of,
        {cid: name for cid, (name, _subjects) in zip(cohort_ids, cohort_specs, strict=True)},
        (FIRST_NAMES, [name.replace("-", " ") for name in LAST_NAMES]),
    )
    school.absences, school.internships = records.absences, records.internships
    school.students, school.teachers, school.staff = len(student_ids), teacher_count, staff_count
    school.cohorts = len(cohort_ids)
    school.courses = db.session.query(Course).count()
    db.session.flush()
    log.info("demo school built: %s", school)
    return school


def _slot(rng: random.Random, hours: int) -> dict:
    start = rng.randint(8, 18 - hours)
    return {
        "weekday": rng.randint(0, 4),
        "start_time": time(start, 0),
        "end_time": time(start + hours, 0),
    }


def _build_courses(rng, cohort_specs, cohort_ids, groups_of, teacher_ids) -> dict:
    """Each cohort: per subject a CM for the cohort and a TD (or TP) per group, ~400 in all.

    Return the courses of each ("cohort", id) and ("group", id) as (id, subject, weekly slot).
    """
    courses, slots, teachers, cohorts, groups, sessions = [], [], [], [], [], []
    # Each subject of a cohort has its own small team of teachers.
    for (_cohort_name, subjects), cid in zip(cohort_specs, cohort_ids, strict=True):
        for subject in subjects:
            team = rng.sample(teacher_ids, 2)
            has_tp = subject.startswith(("Programmation", "Développement", "Réseaux", "Physique"))
            parts = [("CM", None, 2)] + [
                ("TD", f"TD{td}", 2) for td in range(1, TD_GROUPS + 1) if not has_tp or td <= 2
            ]
            if has_tp:
                parts += [("TP", f"TP{tp}", 3) for tp in (1, 2)]
            for course_type, group_name, hours in parts:
                index = len(courses)
                room = rng.choice(ROOMS[:3] if course_type == "CM" else ROOMS[3:])
                if course_type == "TP":
                    room = rng.choice(ROOMS[-8:])
                courses.append({"subject": subject, "course_type": course_type, "room": room})
                slots.append((index, _slot(rng, hours)))
                teachers.append((index, team[0] if course_type == "CM" else rng.choice(team)))
                if group_name:
                    groups.append((index, groups_of[cid][group_name]))
                else:
                    cohorts.append((index, cid))
                if subject == "Projet tutoré" and course_type == "CM":
                    first = date(2026, 1, 12)
                    for week in range(3):
                        day = first + timedelta(weeks=2 * week)
                        sessions.append(
                            (index, {"day": day, "start_time": time(14), "end_time": time(17)})
                        )
    course_ids = insert_many(Course, courses)
    db.session.execute(
        insert(CourseSlot), [{"course_id": course_ids[i], **slot} for i, slot in slots]
    )
    db.session.execute(
        insert(CourseSession), [{"course_id": course_ids[i], **s} for i, s in sessions]
    )
    db.session.execute(
        insert(course_teacher), [{"course_id": course_ids[i], "person_id": p} for i, p in teachers]
    )
    db.session.execute(
        insert(course_cohort), [{"course_id": course_ids[i], "cohort_id": c} for i, c in cohorts]
    )
    db.session.execute(
        insert(course_group), [{"course_id": course_ids[i], "group_id": g} for i, g in groups]
    )
    courses_of: dict[tuple[str, int], list] = {}
    slot_of = dict(slots)
    for owner, links in (("cohort", cohorts), ("group", groups)):
        for i, owner_id in links:
            entry = (course_ids[i], courses[i]["subject"], slot_of[i])
            courses_of.setdefault((owner, owner_id), []).append(entry)
    return courses_of
