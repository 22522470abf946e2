"""The outbox engine is a package of its own: no page, no Blueprint, modules named for their job."""

from __future__ import annotations

import importlib
import pkgutil

from flask import Blueprint

import hpmail.outbox


def _engine_modules():
    return [
        importlib.import_module(f"hpmail.outbox.{info.name}")
        for info in pkgutil.iter_modules(hpmail.outbox.__path__)
    ]


def test_no_page_of_the_app_is_served_by_the_engine(app):
    modules = {view.__module__ for view in app.view_functions.values()}
    assert "hpmail.delivery.views" in modules
    assert [name for name in modules if name.startswith("hpmail.outbox")] == []


def test_the_engine_holds_no_blueprint_and_names_its_modules_for_what_they_hold():
    modules = _engine_modules()
    names = {module.__name__.rsplit(".", 1)[1] for module in modules}
    expected = {
        "api",
        "models",
        "queue",
        "claim",
        "send",
        "smtp",
        "mime",
        "record",
        "retry",
        "tasks",
    }
    assert expected <= names
    blueprints = [
        f"{module.__name__}.{name}"
        for module in modules
        for name, value in vars(module).items()
        if isinstance(value, Blueprint)
    ]
    assert blueprints == []
