#!/usr/bin/env python3
"""Regenerate data/linguist-languages.json from the npm package linguist-languages.

    npm pack linguist-languages@9.5.0 && tar xzf linguist-languages-9.5.0.tgz
    node -e "import('./package/index.js').then(m => console.log(JSON.stringify(
      Object.values(m.default).filter(x => x.type === 'programming').map(x => x.name))))" > names.json
    python3 data/gen_linguist_languages.py names.json > data/linguist-languages.json

Kept: names not already a form in skills.json, ASCII, at least three characters,
and distinctive (CamelCase, a digit, space or symbol, all capitals, or on the
allow-list below); ordinary English words (Red, Ring, Crystal, Pony, ...) and
non-languages (REPL transcripts, build recipes) are left out. Every entry is a
strict form: it is read only with its exact case inside a skills list.
"""
import json
import re
import sys

ALLOW = {"Haxe", "Nim", "Idris", "Agda", "Coq", "Odin", "Vala", "Gleam", "Raku", "Eiffel",
         "Ceylon", "Oberon", "Nix", "Dhall", "Jsonnet", "Starlark", "Bicep", "Vyper", "Mojo",
         "Futhark", "Isabelle", "Scilab", "Gnuplot", "AutoIt", "AutoHotkey", "Batchfile", "Awk",
         "Meson", "Nextflow", "Snakemake", "Cython", "Nushell", "Elvish", "Xonsh", "Tcsh",
         "Fennel", "Rebol", "Nemerle", "Xtend"}
WORDS = {"Red", "Ring", "Joy", "Io", "Factor", "Forth", "Move", "Metal", "Fish", "Lean", "Hack",
         "Boo", "Pony", "Crystal", "Chapel", "Cairo", "Carp", "Janet", "Wren", "Gosu",
         "Squirrel", "Hy"}
DROP = {"Python console", "ShellSession", "Julia REPL", "Elvish Transcript", "Isabelle ROOT",
        "Gentoo Ebuild", "Gentoo Eclass", "OpenRC runscript", "Alpine Abuild",
        "Csound Document", "Csound Score", "Filebench WML", "Linker Script", "Literate Agda",
        "Literate CoffeeScript", "Literate Haskell", "JavaScript+ERB", "NetLinx+ERB",
        "Jison Lex", "M4Sugar", "Tree-sitter Query"}


def main() -> None:
    names = json.load(open(sys.argv[1]))
    skills = json.load(open("data/skills.json"))["skills"]
    forms = {f.lower() for s in skills
             for f in [s["name"], *s.get("aliases", []), *s.get("cased", []), *s.get("strict", [])]}
    out = []
    for n in names:
        if n.lower() in forms or not n.isascii() or len(n) < 3 or n in WORDS or n in DROP:
            continue
        distinctive = (re.search(r"[a-z][A-Z]", n) or re.search(r"[^A-Za-z]", n)
                       or (n.isupper() and len(n) >= 3))
        if not (distinctive or n in ALLOW):
            continue
        out.append({"name": n, "strict": [n], "category": "language"})
        forms.add(n.lower())
    body = ",\n".join("    " + json.dumps(o) for o in out)
    print('{\n  "version": 1,\n  "source": "linguist-languages 9.5.0 (npm, MIT), programming '
          'languages of GitHub Linguist (MIT); see NOTICE-linguist-languages.txt",\n'
          '  "skills": [\n' + body + "\n  ]\n}")


if __name__ == "__main__":
    main()
