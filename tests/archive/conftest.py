from tests.compose.conftest import personal_account, select_people, sender  # noqa: F401
