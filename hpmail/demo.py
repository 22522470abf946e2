"""The demo school: deterministic French data, a sign-in per role, delivery to the test mailbox."""

from __future__ import annotations

from hpmail.accounts.demo import load_demo_accounts
from hpmail.auth.models import Role
from hpmail.auth.service import create_user
from hpmail.delivery.demo import configure_demo_delivery
from hpmail.directory.demo import build_school
from hpmail.documents.letterhead import save_letterhead
from hpmail.letters.demo import load_demo_letters

DEMO_USERS = (
    ("admin", "Agnès Martin (administratrice)", Role.ADMIN, "admin.demo@lycee-demo.fr"),
    ("secretariat", "Sophie Bernard (secrétariat)", Role.STAFF, "sophie.bernard@lycee-demo.fr"),
    ("prof", "Julien Petit (enseignant)", Role.TEACHER, "julien.petit@lycee-demo.fr"),
)
DEMO_LETTERHEAD = ("Lycée de démonstration", "12 rue des Écoles\n69007 Lyon", "Lyon")
DEMO_PASSWORD = "demo-hpmail"  # noqa: S105  (printed to every newcomer: demo only)


def load(scale: int = 1) -> None:
    """Build the demo school, its users, its form letters and delivery settings (caller commits)."""
    school = build_school(scale=scale)
    users = {}
    for login, name, role, email in DEMO_USERS:
        users[login] = user = create_user(login, name, DEMO_PASSWORD, role, email=email)
        user.person_id = school.person_ids.get(email)  # "prof" is the teacher Julien Petit
    save_letterhead(*DEMO_LETTERHEAD, actor="demo")
    load_demo_letters(author=users["secretariat"])
    configure_demo_delivery()
    load_demo_accounts()


def sign_in_help() -> str:
    """Return the lines that tell a newcomer how to sign in to the demo."""
    lines = [f"Connexions de démonstration (mot de passe « {DEMO_PASSWORD} ») :"]
    lines += [f"  {login:<12} {name}" for login, name, _role, _email in DEMO_USERS]
    return "\n".join(lines)
