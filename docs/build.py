"""Build the documentation into a folder: ``python docs/build.py OUT`` (``make docs``: build/docs).

- ``OUT/AtModemLibrary.html``: the Robot Framework keywords of AtModemLibrary, by libdoc.
- ``OUT/plugin-guide.html``: the plugin author's guide. Its prose is ``docs/plugin-guide.template.html``;
  the hook reference comes from ``atmodem.hookspecs`` (signatures, flags and docstrings) and the
  example plugin is the source in ``docs/example_plugin``, so neither can drift from the code.

The output is generated, never committed. The guide is the same bytes for the same sources;
libdoc stamps its page with the time of the build unless ``SOURCE_DATE_EPOCH`` is set.
"""

from __future__ import annotations

import html
import inspect
import re
import sys
from pathlib import Path
from string import Template

import atmodem
from atmodem import hookspecs
from robot.libdoc import libdoc

DOCS = Path(__file__).resolve().parent
EXAMPLE_PLUGIN = DOCS / "example_plugin"
EXAMPLE_SOURCES = (".py", ".toml", ".cfg")
SPEC_ATTRIBUTE = f"{atmodem.NAME}_spec"   # where pluggy's HookspecMarker keeps a hook's options


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: build.py OUTPUT_FOLDER", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    # libdoc prints its own warnings and errors; a non-zero status means the page is missing or wrong.
    status = libdoc("AtModemLibrary", str(out / "AtModemLibrary.html"))
    if status:
        print(f"build.py: libdoc failed with status {status}", file=sys.stderr)
        return 1
    guide = out / "plugin-guide.html"
    guide.write_text(plugin_guide(), encoding="utf-8", newline="\n")
    print(f"build.py: {guide}")
    return 0


def plugin_guide() -> str:
    template = Template((DOCS / "plugin-guide.template.html").read_text(encoding="utf-8"))
    specs = hook_specs()
    return template.substitute(
        style=(DOCS / "style.css").read_text(encoding="utf-8"),
        version=html.escape(atmodem.__version__),
        hook_index=hook_index(specs),
        hooks="\n".join(hook_section(spec) for spec in specs),
        example="\n".join(source_listing(path) for path in example_files()),
    )


def hook_specs() -> list:
    """The hook specifications, in the order ``hookspecs.py`` declares them."""
    specs = [value for value in vars(hookspecs).values()
             if inspect.isfunction(value) and hasattr(value, SPEC_ATTRIBUTE)]
    undocumented = [spec.__name__ for spec in specs if not inspect.getdoc(spec)]
    if undocumented:
        raise SystemExit(f"build.py: hook specs without a docstring: {', '.join(undocumented)}")
    return specs


def signature(spec) -> str:
    return f"{spec.__name__}{inspect.signature(spec)}"


def hook_index(specs: list) -> str:
    rows = "\n".join(
        f'<tr><td><a href="#{spec.__name__}"><code>{html.escape(signature(spec))}</code></a></td>'
        f"<td>{inline(inspect.getdoc(spec).splitlines()[0])}</td></tr>"
        for spec in specs)
    return f"<table>\n<tr><th>hook</th><th>what it is for</th></tr>\n{rows}\n</table>"


def hook_section(spec) -> str:
    options = getattr(spec, SPEC_ATTRIBUTE)
    flags = "".join(f'<span class="flag">{flag}</span>' for flag in ("firstresult", "historic") if options.get(flag))
    return (f'<div class="hook" id="{spec.__name__}">\n'
            f"<h3><code>{html.escape(signature(spec))}</code></h3>\n"
            + (f"<p>{flags}</p>\n" if flags else "")
            + docstring(inspect.getdoc(spec))
            + "\n</div>")


FIELD = re.compile(r":(?:param (\w+)|returns?):\s*(.*)")


def docstring(text: str) -> str:
    """reST as the hook specs write it: paragraphs, ``literals``, and :param:/:return: fields."""
    parts, fields = [], []
    for paragraph in text.split("\n\n"):
        if not paragraph.startswith(":"):
            parts.append(f"<p>{inline(paragraph)}</p>")
            continue
        for line in paragraph.splitlines():
            field = FIELD.match(line)
            if field:
                fields.append([field.group(1) or "returns", field.group(2)])
            elif fields and line[:1].isspace():  # an indented continuation of the field above
                fields[-1][1] += " " + line.strip()
            else:  # a field this guide has no form for (:note:): shown as written
                parts.append(f"<p>{inline(line)}</p>")
    if fields:
        parts.append("<dl>" + "".join(f"<dt>{html.escape(name)}</dt><dd>{inline(text)}</dd>"
                                      for name, text in fields) + "</dl>")
    return "\n".join(parts)


def inline(text: str) -> str:
    return re.sub(r"``(.+?)``", r"<code>\1</code>", html.escape(text), flags=re.S)


def example_files() -> list[Path]:
    """The example distribution's sources, without what building or running it leaves behind."""
    return sorted(path for path in EXAMPLE_PLUGIN.rglob("*")
                  if path.is_file() and path.suffix in EXAMPLE_SOURCES
                  and not any(part == "__pycache__" or part == "build" or part.endswith(".egg-info")
                              for part in path.relative_to(EXAMPLE_PLUGIN).parts))


def source_listing(path: Path) -> str:
    name = path.relative_to(EXAMPLE_PLUGIN).as_posix()
    return (f'<p class="file" id="{html.escape(name)}">{html.escape(name)}</p>\n'
            f"<pre><code>{html.escape(path.read_text(encoding='utf-8'))}</code></pre>")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
