#!/usr/bin/env python3
"""Renders every case of cases.json with every template of templates.json, and every case of
language-cases.json, with jinja2 set up as transformers' apply_chat_template sets it up; writes expected.json.

Run from anywhere: python3 tests/data/chat-templates/render.py  (Debian's python3-jinja2; 3.1.6 made the file).
The C# tests (tests/KvFusion.Engine.Tests/Chat) render the same inputs and compare byte for byte.
"""
import json
import pathlib
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = pathlib.Path(__file__).resolve().parent


def make_environment():
    # As transformers.utils.chat_template_utils._compile_jinja_template does (without its {% generation %} tracker).
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, source, variables):
    try:
        return {"output": env.from_string(source).render(**variables)}
    except Exception as e:  # noqa: BLE001 - every failure is an expected error the C# side must also raise
        return {"error": str(e), "error_type": type(e).__name__}


def main():
    env = make_environment()
    templates = json.loads((HERE / "templates.json").read_text(encoding="utf-8"))
    cases = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
    language = json.loads((HERE / "language-cases.json").read_text(encoding="utf-8"))

    expected = {"jinja2_version": jinja2.__version__, "templates": {}, "language": {}}
    for template in templates:
        source = (HERE / template["file"]).read_text(encoding="utf-8")
        results = {}
        for case in cases["cases"]:
            variables = {
                "messages": case["messages"],
                "tools": None,
                "documents": None,
                "add_generation_prompt": case["add_generation_prompt"],
                "bos_token": template["bos_token"] or "",
                "eos_token": template["eos_token"] or "",
                **cases["variables"],
            }
            results[case["name"]] = render(env, source, variables)
        expected["templates"][template["name"]] = results

    for case in language["cases"]:
        expected["language"][case["name"]] = render(env, case["template"], language["variables"])

    (HERE / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
