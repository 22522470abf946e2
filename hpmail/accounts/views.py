"""Pages of accounts: the school's shared accounts (admin) and each user's mail settings."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from jinja2_fragments.flask import render_block

from hpmail.accounts import audit, school, service, verification
from hpmail.accounts.forms import (
    ChangeSecretForm,
    ChooseAccountForm,
    CodeForm,
    ConfirmForm,
    DeleteAccountForm,
    EditAccountForm,
    MemberForm,
    OptionsForm,
    PersonalAccountForm,
    SchoolAccountForm,
    SecretForm,
    UnlockCodeForm,
    UnlockForm,
)
from hpmail.accounts.models import Account, AccountKind
from hpmail.accounts.verification import CodeRefused, seconds_before_resend
from hpmail.auth.models import User
from hpmail.core.forms import INVALID, InputRefused, form_again, show_errors
from hpmail.core.web import admin_required, is_htmx, render, whole_number
from hpmail.extensions import db
from hpmail.outbox.api import dispatch

bp = Blueprint("accounts", __name__, cli_group=None)
# The pages and the code e-mail say how long a code lasts from the configuration.
bp.add_app_template_global(verification.code_minutes)
log = logging.getLogger(__name__)

SCHOOL_PAGE = "accounts/school_accounts.html"
SETTINGS_PAGE = "accounts/mail_settings.html"


def _dispatch(mailing) -> list[str]:
    """Hand a committed mailing to the delivery engine; return its errors (translated)."""
    result = dispatch(mailing)
    return list(result.errors) if result.failed else []


def _school_account(account_id: int) -> Account:
    account = db.session.get(Account, account_id)
    if account is None or account.kind != AccountKind.SCHOOL:
        abort(404)
    return account


# --- Configuration › Gérer les comptes e-mails de l'établissement ------------------------------


def _school_page(
    selected: Account | None,
    fragment: str | None = None,
    *,
    refused: InputRefused | None = None,
    form=None,
    on_field: str | None = None,
    errors_key: str | None = None,
    **ctx,
):
    """Render the school accounts page (or its ``fragment``); with ``refused``, its ``form``
    again with the errors and 422."""
    forms = {
        "create_form": SchoolAccountForm(formdata=None),
        "code_form": CodeForm(formdata=None),
        "secret_form": SecretForm(formdata=None),
        "edit_form": EditAccountForm(
            formdata=None,
            prefix="edit",
            label=selected.label if selected else "",
            address=selected.address if selected else "",
        ),
        "change_secret_form": ChangeSecretForm(formdata=None, prefix="secret"),
        "delete_form": DeleteAccountForm(formdata=None, prefix="delete"),
        "unlock_form": UnlockForm(formdata=None, prefix="unlock"),
        "unlock_code_form": UnlockCodeForm(formdata=None, prefix="unlockcode"),
    }
    forms.update(ctx)
    query = request.args.get("q", "")
    whole_page = not (fragment and is_htmx())
    with_checklist = (
        selected is not None and selected.is_ready and fragment in (None, "pane", "checklist")
    )
    context = dict(
        accounts=school.school_accounts() if whole_page else [],
        selected=selected,
        checklist=school.member_checklist(selected, query) if with_checklist else [],
        query=query,
        transform_refusal=school.transform_refusal(selected) if selected else None,
        resend_wait=seconds_before_resend(selected) if selected else 0,
        unlocked_until=audit.unlocked_until(selected, current_user) if selected else None,
        audit_lines=audit.audit_lines(selected) if selected and fragment != "checklist" else [],
        audit_actions=audit.ACTIONS,
        unlock_minutes=audit.UNLOCK_MINUTES,
        **forms,
    )
    if refused is None:
        return render(SCHOOL_PAGE, fragment, **context)
    return form_again(
        SCHOOL_PAGE,
        fragment,
        form=form,
        refused=refused,
        on_field=on_field,
        errors_key=errors_key,
        **context,
    )


@bp.route("/configuration/comptes-etablissement")
@admin_required
def school_accounts():
    account_id = request.args.get("compte", type=whole_number)
    selected = _school_account(account_id) if account_id else None
    return _school_page(selected)


@bp.route("/configuration/comptes-etablissement/nouveau", methods=["POST"])
@admin_required
def create_school_account():
    form = SchoolAccountForm()
    try:
        account, mailing = school.create_school_account(
            form.label.data, form.address.data, current_user
        )
    except (service.AccountInvalid, CodeRefused) as refused:
        db.session.rollback()
        return _school_page(
            None, refused=refused, form=form, errors_key="create_errors", create_form=form
        )
    db.session.commit()
    for error in _dispatch(mailing):
        flash(error, "error")
    flash(_("A verification code was sent to %(address)s.", address=account.address), "success")
    return redirect(url_for("accounts.school_accounts", compte=account.id))


@bp.route("/configuration/comptes-etablissement/<int:account_id>/code", methods=["POST"])
@admin_required
def check_code(account_id: int):
    account = _school_account(account_id)
    form = CodeForm()
    try:
        service.verify_code(account, form.code.data, current_user)
    except CodeRefused as refused:
        db.session.commit()  # the wrong try counts towards the limit
        return _school_page(
            account, "pane", refused=refused, form=form, on_field="code", code_form=form
        )
    db.session.commit()
    response = _school_page(account, "pane", code_message=_("The address is verified."))
    if is_htmx():  # the account's state changed in the list too: swap its rows out of band
        response.set_data(response.get_data(as_text=True) + _account_rows_oob(account))
    return response


def _account_rows_oob(selected: Account) -> str:
    """Return the school accounts' rows to swap out of band (state and user count follow)."""
    return render_block(
        SCHOOL_PAGE, "account_rows", oob=True, accounts=school.school_accounts(), selected=selected
    )


@bp.route("/configuration/comptes-etablissement/<int:account_id>/renvoyer-code", methods=["POST"])
@admin_required
def resend_code(account_id: int):
    account = _school_account(account_id)
    if account.verified_at is not None:
        return _school_page(account, "pane")
    try:
        mailing = service.send_code(account, current_user)
    except CodeRefused as refused:
        db.session.rollback()
        return _school_page(account, "pane", refused=refused, errors_key="code_errors")
    db.session.commit()
    errors = _dispatch(mailing)
    message = _("A new code was sent to %(address)s.", address=account.address)
    return _school_page(account, "pane", code_message=message, code_errors=errors)


@bp.route("/configuration/comptes-etablissement/<int:account_id>/secret", methods=["POST"])
@admin_required
def set_secret(account_id: int):
    account = _school_account(account_id)
    form = SecretForm()
    try:
        school.set_secret(account, form.question.data, form.answer.data, current_user)
    except service.AccountInvalid as invalid:
        db.session.rollback()
        return _school_page(
            account, refused=invalid, form=form, errors_key="secret_errors", secret_form=form
        )
    db.session.commit()
    flash(_("The account %(label)s is created.", label=account.label), "success")
    return redirect(url_for("accounts.school_accounts", compte=account.id))


@bp.route("/configuration/comptes-etablissement/<int:account_id>/modifier", methods=["POST"])
@admin_required
def edit_school_account(account_id: int):
    account = _school_account(account_id)
    form = EditAccountForm(prefix="edit")
    try:
        changed = school.update_school_account(
            account, form.label.data, form.address.data, form.current_answer.data, current_user
        )
        mailing = service.send_code(account, current_user) if changed else None
    except service.AccountInvalid as invalid:
        _end_refused(invalid)
        return _school_page(
            account, refused=invalid, form=form, edit_form=form, open_section="edit"
        )
    except CodeRefused as refused:
        db.session.rollback()
        return _school_page(
            account,
            refused=refused,
            form=form,
            on_field="address",
            edit_form=form,
            open_section="edit",
        )
    db.session.commit()
    if mailing is not None:
        for error in _dispatch(mailing):
            flash(error, "error")
        flash(
            _(
                "The address changed: a verification code was sent to %(address)s.",
                address=account.address,
            ),
            "warning",
        )
    else:
        flash(_("The account is saved."), "success")
    return redirect(url_for("accounts.school_accounts", compte=account.id))


def _end_refused(invalid: service.AccountInvalid) -> None:
    """Undo a refused change, but keep a wrong secret answer counted (the service checks the
    answer after every other rule and before changing anything, so only the counter is saved)."""
    if "current_answer" in invalid.errors:
        db.session.commit()
    else:
        db.session.rollback()


@bp.route("/configuration/comptes-etablissement/<int:account_id>/changer-secret", methods=["POST"])
@admin_required
def change_secret(account_id: int):
    account = _school_account(account_id)
    form = ChangeSecretForm(prefix="secret")
    try:
        school.change_secret(
            account, form.current_answer.data, form.question.data, form.answer.data, current_user
        )
    except service.AccountInvalid as invalid:
        _end_refused(invalid)
        return _school_page(
            account, refused=invalid, form=form, change_secret_form=form, open_section="secret"
        )
    db.session.commit()
    flash(_("The secret question is changed."), "success")
    return redirect(url_for("accounts.school_accounts", compte=account.id))


@bp.route("/configuration/comptes-etablissement/<int:account_id>/supprimer", methods=["POST"])
@admin_required
def delete_school_account(account_id: int):
    account = _school_account(account_id)
    form = DeleteAccountForm(prefix="delete")
    label = account.label
    try:
        school.delete_account(account, form.current_answer.data, current_user)
    except service.AccountInvalid as invalid:
        _end_refused(invalid)
        return _school_page(
            account,
            refused=invalid,
            form=form,
            errors_key="delete_errors",
            delete_form=form,
            open_section="delete",
        )
    db.session.commit()
    flash(_("The account %(label)s is deleted.", label=label), "success")
    return redirect(url_for("accounts.school_accounts"))


@bp.route("/configuration/comptes-etablissement/<int:account_id>/deverrouiller", methods=["POST"])
@admin_required
def unlock_account(account_id: int):
    account = _school_account(account_id)
    form = UnlockForm(prefix="unlock")
    code_form = UnlockCodeForm(prefix="unlockcode")
    try:
        if code_form.code.data is not None:  # the code form, for an admin who forgot the answer
            audit.unlock_with_code(account, code_form.code.data, current_user)
        else:
            audit.unlock(account, form.current_answer.data, current_user)
    except service.AccountInvalid as invalid:
        db.session.commit()  # the wrong answer or code counts towards the limit, and is audited
        show_errors(code_form, invalid)
        return _school_page(
            account,
            "pane",
            refused=invalid,
            form=form,
            unlock_form=form,
            unlock_code_form=code_form,
            unlock_code_sent="code" in invalid.errors,
        )
    db.session.commit()
    if is_htmx():
        return _school_page(account, "pane")
    return redirect(url_for("accounts.school_accounts", compte=account.id))


@bp.route(
    "/configuration/comptes-etablissement/<int:account_id>/code-deverrouillage", methods=["POST"]
)
@admin_required
def send_unlock_code(account_id: int):
    account = _school_account(account_id)
    if not account.is_ready:
        abort(404)
    try:
        mailing = service.send_code(account, current_user)
    except CodeRefused as refused:
        db.session.rollback()
        return _school_page(account, "pane", refused=refused, errors_key="unlock_errors")
    db.session.commit()
    errors = _dispatch(mailing)
    message = _("A code was sent to %(address)s.", address=account.address)
    return _school_page(
        account,
        "pane",
        unlock_code_sent=True,
        unlock_message=message,
        unlock_errors=errors,
    )


@bp.route("/configuration/comptes-etablissement/<int:account_id>/utilisateurs")
@admin_required
def member_checklist(account_id: int):
    account = _school_account(account_id)
    return _school_page(account, "checklist")


@bp.route(
    "/configuration/comptes-etablissement/<int:account_id>/utilisateurs/<int:user_id>",
    methods=["POST"],
)
@admin_required
def toggle_member(account_id: int, user_id: int):
    account = _school_account(account_id)
    user = db.session.get(User, user_id)
    if user is None or not user.active:
        abort(404)
    authorised = MemberForm().authorised.data
    try:
        school.set_member(account, user, authorised, current_user)
    except service.AccountInvalid as invalid:
        db.session.rollback()
        if not is_htmx():
            flash(str(invalid), "error")
            return redirect(url_for("accounts.school_accounts", compte=account.id))
        context = {
            "selected": account,
            "user": user,
            "authorised": user in account.members,
            "row_error": str(invalid),
        }
        response = current_app.make_response(render_block(SCHOOL_PAGE, "member_row", **context))
        response.vary.add("HX-Request")
        return response
    db.session.commit()
    if not is_htmx():
        return redirect(url_for("accounts.school_accounts", compte=account.id))
    context = {
        "selected": account,
        "user": user,
        "authorised": authorised,
        "saved": True,
        "unlocked_until": audit.unlocked_until(account, current_user),
    }
    row = render_block(SCHOOL_PAGE, "member_row", **context)
    # The transform button depends on how many users are authorised: swap it out of band.
    button = render_block(
        SCHOOL_PAGE,
        "transform_button",
        oob=True,
        transform_refusal=school.transform_refusal(account),
        **context,
    )
    # So do the state and user count of the accounts table, and the account's history.
    history = render_block(
        SCHOOL_PAGE,
        "history",
        oob=True,
        audit_lines=audit.audit_lines(account),
        audit_actions=audit.ACTIONS,
    )
    response = current_app.make_response(row + button + _account_rows_oob(account) + history)
    response.vary.add("HX-Request")
    return response


@bp.route(
    "/configuration/comptes-etablissement/<int:account_id>/transformer", methods=["GET", "POST"]
)
@admin_required
def transform_account(account_id: int):
    account = _school_account(account_id)
    reason = school.transform_refusal(account)
    form = UnlockForm(prefix="unlock")
    if request.method == "POST" and not reason:
        if not ConfirmForm().confirmed:
            return redirect(url_for("accounts.school_accounts", compte=account.id))
        try:
            owner = school.transform_to_personal(account, current_user, form.current_answer.data)
        except service.AccountInvalid as invalid:
            _end_refused(invalid)
            member = account.members[0]
            page = "accounts/transform.html"
            return form_again(page, form=form, refused=invalid, account=account, member=member)
        db.session.commit()
        flash(
            _(
                "%(label)s is now the personal account of %(name)s.",
                label=account.label,
                name=owner.display_name,
            ),
            "success",
        )
        return redirect(url_for("accounts.school_accounts"))
    status = INVALID if reason and request.method == "POST" else 200
    member = account.members[0] if not reason else None
    unlocked = audit.unlocked_until(account, current_user)
    page = render(
        "accounts/transform.html",
        account=account,
        reason=reason,
        member=member,
        form=None if unlocked else UnlockForm(formdata=None, prefix="unlock"),
    )
    return page, status


# --- Configuration › Paramétrer l'envoi d'e-mails pour ce poste -------------------------------


def _settings_page(
    fragment: str | None = None,
    *,
    refused: InputRefused | None = None,
    form=None,
    on_field: str | None = None,
    errors_key: str | None = None,
    **ctx,
):
    """Render the user's mail settings (or their ``fragment``); with ``refused``, its ``form``
    again with the errors and 422."""
    user = current_user._get_current_object()
    personal = service.personal_account(user)
    settings = service.saved_settings(user)  # a page reads: unsaved defaults, no row written
    context = {
        "accounts": service.usable_accounts(user),
        "chosen": service.default_account(user),
        "personal": personal,
        "settings": settings,
        "personal_form": PersonalAccountForm(
            formdata=None,
            display_name=personal.display_name if personal else user.display_name,
            address=personal.address if personal else (user.email or ""),
        ),
        "code_form": CodeForm(formdata=None),
        "options_form": OptionsForm(
            formdata=None,
            reply_to=settings.reply_to or "",
            hide_recipients=settings.hide_recipients,
        ),
        "needs_code": bool(personal and not service.may_send_as(user.id, personal.id)),
        "resend_wait": seconds_before_resend(personal) if personal else 0,
    }
    context.update(ctx)
    if refused is None:
        return render(SETTINGS_PAGE, fragment, **context)
    return form_again(
        SETTINGS_PAGE,
        fragment,
        form=form,
        refused=refused,
        on_field=on_field,
        errors_key=errors_key,
        **context,
    )


@bp.route("/configuration/envoi", methods=["GET", "POST"])
def mail_settings():
    if request.method == "POST":
        try:
            account_id = ChooseAccountForm().account_id.data
            account = service.choose_account(current_user, account_id)
        except service.AccountInvalid as invalid:
            db.session.rollback()
            return _settings_page(refused=invalid, errors_key="choose_errors")
        db.session.commit()
        flash(_("You now send from %(address)s.", address=account.address), "success")
        return redirect(url_for("accounts.mail_settings"))
    return _settings_page()


@bp.route("/configuration/envoi/options", methods=["POST"])
def mail_options():
    form = OptionsForm()
    try:
        service.save_options(current_user, form.reply_to.data, form.hide_recipients.data)
    except service.AccountInvalid as invalid:
        db.session.rollback()
        return _settings_page(refused=invalid, form=form, options_form=form, options_open=True)
    db.session.commit()
    flash(_("Your sending options are saved."), "success")
    return redirect(url_for("accounts.mail_settings"))


@bp.route("/configuration/envoi/compte-personnel", methods=["POST"])
def personal_account():
    form = PersonalAccountForm()
    try:
        account, needs_code = service.save_personal_account(
            current_user, form.display_name.data, form.address.data
        )
        mailing = service.send_code(account, current_user) if needs_code else None
    except service.AccountInvalid as invalid:
        db.session.rollback()
        return _settings_page(refused=invalid, form=form, personal_form=form)
    except CodeRefused as refused:
        db.session.rollback()
        return _settings_page(refused=refused, form=form, on_field="address", personal_form=form)
    db.session.commit()
    if mailing is not None:
        for error in _dispatch(mailing):
            flash(error, "error")
        flash(_("A verification code was sent to %(address)s.", address=account.address), "success")
    else:
        flash(_("Your personal account is saved."), "success")
    return redirect(url_for("accounts.mail_settings"))


def _own_personal_account() -> Account:
    account = service.personal_account(current_user)
    if account is None:
        abort(404)
    return account


@bp.route("/configuration/envoi/compte-personnel/code", methods=["POST"])
def check_personal_code():
    account = _own_personal_account()
    form = CodeForm()
    try:
        service.verify_code(account, form.code.data, current_user)
    except CodeRefused as refused:
        db.session.commit()  # the wrong try counts towards the limit
        return _settings_page(
            "personal_pane", refused=refused, form=form, on_field="code", code_form=form
        )
    db.session.commit()
    return _settings_page("personal_pane", code_message=_("The address is verified."))


@bp.route("/configuration/envoi/compte-personnel/renvoyer-code", methods=["POST"])
def resend_personal_code():
    account = _own_personal_account()
    try:
        mailing = service.send_code(account, current_user)
    except CodeRefused as refused:
        db.session.rollback()
        return _settings_page("personal_pane", refused=refused, errors_key="code_errors")
    db.session.commit()
    errors = _dispatch(mailing)
    message = _("A new code was sent to %(address)s.", address=account.address)
    return _settings_page("personal_pane", code_message=message, code_errors=errors)


@bp.route("/configuration/envoi/comptes/<int:account_id>/membres")
def account_members(account_id: int):
    account = db.session.get(Account, account_id)
    if account is None or not account.is_school:
        abort(404)
    if not current_user.is_admin and not service.may_send_as(current_user.id, account.id):
        abort(404)
    members = service.other_members(account, current_user)
    return _settings_page("members_tip", tip_account=account, tip_members=members)
