"""Pages of delivery: server settings, test-send, profiles, personal SMTP, outbox, test mailbox."""

from __future__ import annotations

import re

import click
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    redirect,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from hpmail.core.forms import INVALID, form_again, show_errors
from hpmail.core.time import utcnow
from hpmail.core.web import admin_required, is_htmx, page_number, render
from hpmail.delivery import consent, discovery, mailbox, outbox_admin, transports
from hpmail.delivery.diagnostics import diagnose
from hpmail.delivery.domain_checks import check_domain
from hpmail.delivery.forms import (
    AUTH_LABELS,
    SECURITY_LABELS,
    ApplicationsForm,
    ChooseProfileForm,
    OutboxActionForm,
    PersonalActionForm,
    PersonalTransportForm,
    ProfileForm,
    ServerSettingsForm,
    TestSendForm,
)
from hpmail.extensions import db
from hpmail.outbox.destinations import restricted_user
from hpmail.outbox.dkim import ascii_domain
from hpmail.outbox.models import (
    OAUTH_KINDS,
    EmailState,
    OAuthApplication,
    SendingProfile,
    Transport,
)
from hpmail.outbox.policy import domain_of
from hpmail.outbox.settings import server_settings as load_server_settings
from hpmail.outbox.settings import user_transport

bp = Blueprint("delivery", __name__, cli_group=None)

# What the outbox page calls each state of an e-mail (the archive says it in users' words).
OUTBOX_STATE_LABELS = {
    EmailState.QUEUED: _l("Queued"),
    EmailState.SENDING: _l("Being sent"),
    EmailState.DEFERRED: _l("Deferred"),
    EmailState.FAILED: _l("Failed"),
    EmailState.SENT: _l("Sent"),
    EmailState.CANCELLED: _l("Cancelled"),
}
bp.add_app_template_global(SECURITY_LABELS, "security_labels")
bp.add_app_template_global(AUTH_LABELS, "auth_labels")
bp.add_app_template_global(OUTBOX_STATE_LABELS, "outbox_state_labels")


PROFILES_PAGE = "delivery/profiles.html"
DISCOVERY_PARTIAL = "delivery/_discovery.html"
FORM_ID = re.compile(r"[a-z][a-z0-9-]{0,40}")


# --- Serveur › Paramètres d'envoi des e-mails -------------------------------------------------


@bp.route("/serveur/parametres-envoi", methods=["GET", "POST"])
@admin_required
def server_settings():
    settings = load_server_settings()
    form = ServerSettingsForm(obj=settings)
    if request.method == "GET":
        form.show_transport(settings.transport)
    form.show_saved_password(settings.transport)
    if form.validate_on_submit() and _tested_first(
        form, settings.transport, form.sender_address.data, form.sender_name.data
    ):
        transports.save_server_settings(
            settings, form.sender_values(), form.transport_values(), current_user
        )
        if getattr(form, "tested_to", None):  # a test e-mail just went through these settings
            settings.smtp_tested_at = utcnow()
        db.session.commit()
        flash(_saved_message(form, _("The e-mail sending settings are saved.")), "success")
        return redirect(url_for("delivery.server_settings"))
    status = INVALID if request.method == "POST" else 200
    return _server_settings_page(settings, form), status


def _server_settings_page(
    settings, form: ServerSettingsForm, applications_form: ApplicationsForm | None = None
) -> str:
    """Render the server settings page: its form, and the OAuth2 applications' card with the
    redirect URI to register at the provider."""
    if applications_form is None:
        applications_form = ApplicationsForm(formdata=None)
    applications_form.show_saved(
        {name: db.session.get(OAuthApplication, name) for name in OAUTH_KINDS}
    )
    return render(
        "delivery/server_settings.html",
        form=form,
        settings=settings,
        test_form=TestSendForm(formdata=None),
        test_action=url_for("delivery.test_send"),
        applications_form=applications_form,
        redirect_uri=url_for("delivery.oauth_return", _external=True),
    )


@bp.route("/serveur/parametres-envoi/applications-oauth", methods=["POST"])
@admin_required
def oauth_applications():
    form = ApplicationsForm()
    if form.validate_on_submit():
        for values in form.application_values():
            transports.save_application(values, current_user)
        db.session.commit()
        flash(_("The OAuth2 applications are saved."), "success")
        return redirect(url_for("delivery.server_settings"))
    settings = load_server_settings()
    settings_form = ServerSettingsForm(formdata=None, obj=settings)
    settings_form.show_transport(settings.transport)
    settings_form.show_saved_password(settings.transport)
    return _server_settings_page(settings, settings_form, form), INVALID


# --- « Se connecter avec Microsoft / Google » (any page that sets an SMTP server) ------------


@bp.route("/configuration/serveurs-smtp/<int:transport_id>/connexion", methods=["POST"])
def oauth_start(transport_id: int):
    transport = db.get_or_404(Transport, transport_id)
    page = consent.return_page(transport, current_user)
    if page is None:
        abort(404)
    try:
        url = consent.start(
            transport, current_user, url_for("delivery.oauth_return", _external=True)
        )
    except consent.ConsentRefused as refused:
        db.session.rollback()
        flash(str(refused), "error")
        return redirect(url_for(page))
    db.session.commit()
    # A page that moves on by itself, not a redirect: the Content-Security-Policy lets a form
    # post to this site only ("form-action 'self'"), which covers the redirects after it too.
    return render("delivery/oauth_leaving.html", url=url, provider=AUTH_LABELS[transport.auth])


@bp.route("/oauth2/retour")
def oauth_return():
    try:
        transport, page = consent.finish(request.args, current_user)
    except consent.ConsentRefused as refused:
        db.session.commit()  # the sign-in is used up, whatever went wrong
        return render("delivery/oauth_refused.html", message=str(refused)), 400
    waiting = outbox_admin.retry_now(outbox_admin.deferred_through(transport), current_user)
    db.session.commit()
    outbox_admin.wake_worker(waiting)  # what waited for this sign-in leaves now
    flash(
        _(
            "Connected to %(provider)s as %(account)s: the e-mails now leave through this account.",
            provider=AUTH_LABELS[transport.auth],
            account=transport.oauth_account or "—",
        ),
        "success",
    )
    return redirect(url_for(page))


def _tested_first(form, saved, sender: str | None = None, sender_name: str = "") -> bool:
    """Say whether the form may be saved: settings found by "Trouver les paramètres" are tried
    first with a real test e-mail (to the user's address, else to the address they were found
    for); a failure is shown beside the SMTP server and nothing is saved."""
    found_for = form.discovered_for.data
    if not found_for:
        return True
    try:
        form.tested_to = transports.test_before_saving(
            form.transport_values(),
            saved,
            sender or found_for,
            current_user.email or found_for,
            sender_name or current_user.display_name,
            restricted=restricted_user(current_user),
        )
    except transports.SettingsNotTested as refused:
        show_errors(form, refused)
        return False
    return True


def _saved_message(form, saved: str) -> str:
    """Say where the test e-mail went when the settings were tried before being saved."""
    tested_to = getattr(form, "tested_to", None)
    if not tested_to:
        return saved
    return _(
        "%(saved)s The test e-mail went through them to %(address)s.",
        saved=saved,
        address=tested_to,
    )


def _test_send_result(form, diagnosis, problem, action: str, back: str, domain_report=None):
    """Show the outcome of a test-send (or the form again with its errors)."""
    return render(
        "delivery/test_send.html",
        "result",
        test_form=form,
        diagnosis=diagnosis,
        problem=problem,
        domain_report=domain_report,
        test_action=url_for(action),
        back=url_for(back),
        title=_("Test e-mail sending"),
    ), 200 if diagnosis or problem else INVALID


@bp.route("/serveur/parametres-envoi/essai", methods=["POST"])
@admin_required
def test_send():
    settings = load_server_settings()
    form = TestSendForm()
    diagnosis, problem, domain_report = None, None, None
    if form.validate_on_submit():
        recipient = current_user.email or form.recipient.data
        transport = settings.transport
        if not recipient:
            form.recipient.errors.append(_("Enter the address that receives the test e-mail."))
        elif transport is None or not transport.host or not settings.sender_address:
            problem = _("Save the SMTP server and the sender address first.")
        else:
            diagnosis = diagnose(
                transport, settings.sender_address, recipient, settings.sender_name
            )
            if diagnosis.succeeded:
                settings.smtp_tested_at = utcnow()
                db.session.commit()
            # The sender's domain, as receivers will judge it (within its own DNS deadline).
            domain_report = check_domain(
                ascii_domain(domain_of(settings.sender_address)) or "", [transport]
            )
            current_app.logger.info("%s ran the server test-send", current_user.login)
    return _test_send_result(
        form, diagnosis, problem, "delivery.test_send", "delivery.server_settings", domain_report
    )


# --- Configuration › Gérer les profils d'envoi d'e-mails --------------------------------------


@bp.route("/configuration/profils-envoi", methods=["GET", "POST"])
@admin_required
def profiles():
    form = ProfileForm()
    if form.validate_on_submit() and _tested_first(form, None):
        try:
            profile = transports.create_profile(
                form.name.data, form.transport_values(), current_user
            )
        except transports.ProfileNameTaken as taken:
            show_errors(form, taken)
        else:
            db.session.commit()
            if is_htmx():
                return render(
                    PROFILES_PAGE,
                    "profile_new",
                    form=ProfileForm(formdata=None),
                    profile=profile,
                    created=True,
                )
            flash(_("The profile “%(name)s” is added.", name=profile.name), "success")
            return redirect(url_for("delivery.profiles"))
    if request.method == "POST":
        if is_htmx():
            response = render(PROFILES_PAGE, "profile_new", form=form)
            response.headers["HX-Retarget"] = "#profile-new"
            response.headers["HX-Reswap"] = "outerHTML"
            return response
        status = INVALID
    else:
        form = ProfileForm(formdata=None)
        status = 200
    return render(PROFILES_PAGE, form=form, profiles=transports.all_profiles()), status


def _profile_or_404(profile_id: int) -> SendingProfile:
    return db.get_or_404(SendingProfile, profile_id)


@bp.route("/configuration/profils-envoi/<int:profile_id>")
@admin_required
def profile(profile_id: int):
    profile = _profile_or_404(profile_id)
    if not is_htmx():
        return redirect(url_for("delivery.profiles"))
    return render(PROFILES_PAGE, "profile_row", profile=profile)


@bp.route("/configuration/profils-envoi/<int:profile_id>/modifier", methods=["GET", "POST"])
@admin_required
def profile_edit(profile_id: int):
    profile = _profile_or_404(profile_id)
    form = ProfileForm(obj=profile)
    if request.method == "GET":
        form.show_transport(profile.transport)
    form.show_saved_password(profile.transport)
    if form.validate_on_submit() and _tested_first(form, profile.transport):
        try:
            transports.update_profile(
                profile, form.name.data, form.transport_values(), current_user
            )
        except transports.ProfileNameTaken as taken:
            show_errors(form, taken)
        else:
            db.session.commit()
            if is_htmx():
                return render(PROFILES_PAGE, "profile_row", profile=profile)
            flash(_("The profile “%(name)s” is saved.", name=profile.name), "success")
            return redirect(url_for("delivery.profiles"))
    status = INVALID if request.method == "POST" else 200
    if is_htmx():
        return render(PROFILES_PAGE, "profile_edit_row", profile=profile, form=form)
    return render("delivery/profile_edit.html", profile=profile, form=form), status


@bp.route("/configuration/profils-envoi/<int:profile_id>/supprimer", methods=["POST"])
@admin_required
def profile_delete(profile_id: int):
    profile = _profile_or_404(profile_id)
    name = profile.name
    try:
        transports.delete_profile(profile, current_user)
    except transports.ProfileInUse as in_use:
        db.session.rollback()
        if is_htmx():
            return render(PROFILES_PAGE, "profile_row", profile=profile, error=str(in_use))
        flash(str(in_use), "error")
        return redirect(url_for("delivery.profiles"))
    db.session.commit()
    if is_htmx():
        return "", 200  # the row is swapped for nothing
    flash(_("The profile “%(name)s” is deleted.", name=name), "success")
    return redirect(url_for("delivery.profiles"))


# --- Configuration › Paramétrer l'envoi d'e-mails pour ce poste (the user's own SMTP) ---------


@bp.route("/configuration/envoi-personnel", methods=["GET", "POST"])
def personal_transport():
    if load_server_settings().delegate:
        return render("delivery/personal_transport.html", "personal", delegated=True)
    posted = PersonalActionForm()
    if request.method == "POST" and not posted.validate_on_submit():
        own_form, profile_form = _personal_forms(None)
        return form_again(
            "delivery/personal_transport.html",
            "personal",
            errors=posted.action.errors,
            **_personal_context(own_form, profile_form, saved=None),
        )
    action = posted.action.data if request.method == "POST" else None
    own_form, profile_form = _personal_forms(action)
    saved = None
    choice = transports.user_transport_of(current_user)
    if (
        action == "own"
        and own_form.validate_on_submit()
        and _tested_first(own_form, choice.transport if choice else None)
    ):
        transports.set_own_transport(current_user, own_form.transport_values())
        saved = _saved_message(own_form, _("Your SMTP server is saved."))
    elif action == "profile" and profile_form.validate_on_submit():
        chosen = db.session.get(SendingProfile, profile_form.profile_id.data)
        transports.use_profile(current_user, chosen)
        saved = _("You now send through the profile “%(name)s”.", name=chosen.name)
    if saved:
        db.session.commit()
        if not is_htmx():
            flash(saved, "success")
            return redirect(url_for("delivery.personal_transport"))
        own_form, profile_form = _personal_forms(None)  # show what is saved now
    status = INVALID if request.method == "POST" and not saved else 200
    return render(
        "delivery/personal_transport.html",
        "personal",
        **_personal_context(own_form, profile_form, saved),
    ), status


def _personal_context(own_form, profile_form, saved: str | None) -> dict:
    return {
        "delegated": False,
        "choice": transports.user_transport_of(current_user),
        "own_form": own_form,
        "profile_form": profile_form,
        "saved": saved,
        "test_form": TestSendForm(formdata=None),
        "test_action": url_for("delivery.personal_test_send"),
    }


def _personal_forms(action: str | None) -> tuple[PersonalTransportForm, ChooseProfileForm]:
    """Return the two forms of the fragment: the one posted reads the request, the other the DB."""
    choice = transports.user_transport_of(current_user)
    own = choice.transport if choice else None
    # A form given no formdata reads the request (its files too); ``None`` leaves it empty.
    own_form = PersonalTransportForm() if action == "own" else PersonalTransportForm(formdata=None)
    own_form.public_only = restricted_user(current_user)
    profile_form = ChooseProfileForm() if action == "profile" else ChooseProfileForm(formdata=None)
    profile_form.profile_id.choices = [
        SelectChoice(p.id, p.name) for p in transports.all_profiles()
    ]
    if action != "own":
        own_form.show_transport(own)
    if action != "profile" and choice:
        profile_form.profile_id.data = choice.profile_id
    own_form.show_saved_password(own)
    return own_form, profile_form


@bp.route("/configuration/envoi-personnel/essai", methods=["POST"])
def personal_test_send():
    form = TestSendForm()
    diagnosis, problem = None, None
    if form.validate_on_submit():
        address = current_user.email or form.recipient.data
        transport = user_transport(current_user.id)
        if load_server_settings().delegate:
            problem = _("Sending is done by the server: there is nothing to test here.")
        elif not address:
            form.recipient.errors.append(_("Enter the address that receives the test e-mail."))
        elif transport is None or not transport.host:
            problem = _("Save your SMTP server, or retrieve a sending profile, first.")
        else:
            diagnosis = diagnose(transport, address, address, current_user.display_name)
    return _test_send_result(
        form, diagnosis, problem, "delivery.personal_test_send", "delivery.personal_transport"
    )


# --- Trouver les paramètres: the SMTP settings of an address's domain -------------------------


@bp.route("/configuration/trouver-parametres")
def discover_settings():
    """Offer the SMTP settings found for the address typed, to copy into the form ``formulaire``."""
    address = request.args.get("address") or request.args.get("sender_address") or ""
    target = request.args.get("formulaire", "")
    if not FORM_ID.fullmatch(target):
        target = ""
    try:
        found = discovery.discover(address, restricted=restricted_user(current_user))
    except discovery.DiscoveryRefused as refused:
        current_app.logger.info("%s: discovery refused", current_user.login)
        return render(
            DISCOVERY_PARTIAL, "discovery_result", found=None, error=str(refused), target=target
        ), INVALID
    return render(DISCOVERY_PARTIAL, "discovery_result", found=found, error=None, target=target)


# --- Serveur › File d'envoi ------------------------------------------------------------------


@bp.route("/serveur/file-envoi")
@admin_required
def outbox():
    state = request.args.get("etat", "")
    if state not in outbox_admin.LISTED_STATES:
        state = ""
    page = page_number(request.args.get("page"))
    return render("delivery/outbox.html", "rows", **_outbox_context(state, page))


def _outbox_context(state: str, page: int, form: OutboxActionForm | None = None) -> dict:
    """Return what the outbox page shows: one page of the e-mails in ``state`` (all when "")."""
    listing = outbox_admin.outbox_page(state or None, page, current_app.config["LIST_PAGE_SIZE"])
    counts = outbox_admin.counts_by_state()
    return {
        "listing": listing,
        "refused_sign_ins": outbox_admin.refused_sign_ins(),
        "state": state,
        "listed_states": outbox_admin.LISTED_STATES,
        "listed_count": sum(counts[listed] for listed in outbox_admin.LISTED_STATES),
        "counts": counts,
        "form": form or OutboxActionForm(formdata=None),
        "server_notices": outbox_admin.server_notices(),
    }


@bp.route("/serveur/file-envoi/action", methods=["POST"])
@admin_required
def outbox_action():
    form = OutboxActionForm()
    if not form.validate_on_submit():
        state = "" if form.etat.errors else form.etat.data
        page = 1 if form.page.errors else form.page.data or 1
        return form_again("delivery/outbox.html", "rows", **_outbox_context(state, page, form))
    ids = form.email_id.data
    if form.action.data == "retry":
        changed = outbox_admin.retry_now(ids, current_user)
        db.session.commit()
        outbox_admin.wake_worker(changed)
        flash(
            ngettext(
                "%(num)d e-mail will be sent again now.",
                "%(num)d e-mails will be sent again now.",
                len(changed),
            ),
            "success",
        )
    else:
        count = outbox_admin.cancel(ids, current_user)
        db.session.commit()
        flash(ngettext("%(num)d e-mail cancelled.", "%(num)d e-mails cancelled.", count), "success")
    return redirect(url_for("delivery.outbox", etat=form.etat.data or None, page=form.page.data))


@bp.cli.command("outbox")
def outbox_command() -> None:
    """Print how many e-mails are in each state of the outbox."""
    counts = outbox_admin.counts_by_state()
    for state, count in counts.items():
        click.echo(f"{state:<10} {count}")


# --- Serveur › Boîte de test (demo mode only) ------------------------------------------------


@admin_required
def demo_mailbox():
    folder = current_app.config["DEMO_MAILBOX_DIR"]
    return render(
        "delivery/demo_mailbox.html",
        messages=mailbox.list_messages(folder),
        address=(current_app.config["DEMO_MAILBOX_HOST"], current_app.config["DEMO_MAILBOX_PORT"]),
    )


@admin_required
def demo_mailbox_message(name: str):
    message = mailbox.open_message(current_app.config["DEMO_MAILBOX_DIR"], name)
    if message is None:
        abort(404)
    return render("delivery/demo_mailbox_message.html", message=message)


# The HTML part is the sender's: shown in a frame that may run nothing, load nothing, send nothing.
HTML_PART_POLICY = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'"
)


@admin_required
def demo_mailbox_html(name: str):
    body = mailbox.html_body(current_app.config["DEMO_MAILBOX_DIR"], name)
    if body is None:
        abort(404)
    response = current_app.make_response(body)
    response.mimetype = "text/html"
    response.headers["Content-Security-Policy"] = HTML_PART_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.cli.command("demo-mailbox")
def demo_mailbox_command() -> None:
    """Run the demo mailbox (an SMTP server that keeps each e-mail as a .eml file)."""
    config = current_app.config
    if not config["DEMO"]:
        raise click.ClickException(
            "La boîte de test ne sert qu'en mode démonstration (HPMAIL_DEMO=0) : "
            "elle ne démarre pas."
        )
    click.echo(
        f"Boîte de test : {config['DEMO_MAILBOX_HOST']}:{config['DEMO_MAILBOX_PORT']}"
        f" → {config['DEMO_MAILBOX_DIR']}"
    )
    try:
        mailbox.serve(
            config["DEMO_MAILBOX_HOST"],
            int(config["DEMO_MAILBOX_PORT"]),
            config["DEMO_MAILBOX_DIR"],
        )
    except OSError as error:  # most often: the port is taken by another mailbox
        raise click.ClickException(f"La boîte de test ne peut pas démarrer : {error}") from None


def init_app(app: Flask) -> None:
    """Register the demo mailbox pages only in demo mode (404 otherwise, and no menu item)."""
    if app.config.get("DEMO"):
        app.add_url_rule("/serveur/boite-de-test", "delivery.demo_mailbox", demo_mailbox)
        app.add_url_rule(
            "/serveur/boite-de-test/<name>", "delivery.demo_mailbox_message", demo_mailbox_message
        )
        app.add_url_rule(
            "/serveur/boite-de-test/<name>/html", "delivery.demo_mailbox_html", demo_mailbox_html
        )


# The DKIM pages and the allowed domains' checks live in modules of their own, on this blueprint:
# imported once ``bp`` exists.
from hpmail.delivery import dkim_views, domain_views  # noqa: E402, F401
