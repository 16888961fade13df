"""The layering rule of docs/design.md, checked on every C++ source file.

Each source folder is one layer of clinrl; a file may include headers of its
own folder and of folders on lower layers, never of a folder beside it or
above it. The allowed graph and its one documented exception are read from
the ```layering block of docs/design.md, so the page and this test cannot
tell different stories. A failure names the file, the line and the include.

Run by ctest (`layering`) under the venv interpreter; by hand:
    .venv/bin/python tests/layering_test.py -v
"""

import os
import re
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGN = os.path.join("docs", "design.md")

SOURCE_SUFFIXES = (".h", ".hpp", ".cc", ".cpp", ".cu", ".cuh", ".cc.in", ".h.in")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
# Folders that never hold clinrl's own C++ and are not worth walking.
SKIPPED_DIRS = {".git", ".venv", "build", "node_modules", "__pycache__"}


class LayeringError(Exception):
    """The ```layering block of docs/design.md is missing or malformed."""


class Rules:
    """The allowed folder graph of docs/design.md.

    layers: folder -> layer number (0 = core).
    units: name -> (home folder, path prefixes): a library that lives inside
        a folder but keeps a narrower rule of its own.
    unit_uses: unit name -> folders its files may include besides the unit.
    exceptions: (folder, unit name) pairs: folder may include the unit.
    outside: top-level folders holding C++ that are not part of the graph.
    """

    def __init__(self):
        self.layers = {}
        self.units = {}
        self.unit_uses = {}
        self.exceptions = set()
        self.outside = set()


def parse_rules(text, where=DESIGN):
    """Reads the ```layering fenced block of `text` (docs/design.md)."""
    lines = text.splitlines()
    start = None
    for i, line in enumerate(lines):
        if line.strip() == "```layering":
            start = i + 1
            break
    if start is None:
        raise LayeringError(
            f"{where}: no ```layering block; it defines the allowed folder "
            "graph that this test checks")
    rules = Rules()
    layer = 0
    end = None
    for i in range(start, len(lines)):
        line = lines[i].split("#", 1)[0].strip()
        if lines[i].strip() == "```":
            end = i
            break
        if not line:
            continue
        where_line = f"{where}:{i + 1}"
        words = line.split()
        head = words[0]
        if head == "layer":
            if len(words) < 2:
                raise LayeringError(f"{where_line}: 'layer' names no folder")
            for folder in words[1:]:
                if folder in rules.layers:
                    raise LayeringError(
                        f"{where_line}: folder '{folder}' is on two layers")
                rules.layers[folder] = layer
            layer += 1
        elif head == "unit":
            # unit NAME in FOLDER: PREFIX ...
            m = re.fullmatch(r"unit (\S+) in (\S+): (.+)", line)
            if not m:
                raise LayeringError(
                    f"{where_line}: expected 'unit NAME in FOLDER: PATH ...', "
                    f"got '{line}'")
            name, home, paths = m.group(1), m.group(2), m.group(3).split()
            for p in paths:
                if not p.startswith(home + "/"):
                    raise LayeringError(
                        f"{where_line}: unit '{name}' path '{p}' is not under "
                        f"its folder '{home}/'")
            rules.units[name] = (home, paths)
        elif head == "uses":
            # uses UNIT: FOLDER ...
            m = re.fullmatch(r"uses (\S+):(.*)", line)
            if not m:
                raise LayeringError(
                    f"{where_line}: expected 'uses UNIT: FOLDER ...', got "
                    f"'{line}'")
            rules.unit_uses[m.group(1)] = set(m.group(2).split())
        elif head == "exception":
            # exception FOLDER -> UNIT
            m = re.fullmatch(r"exception (\S+) -> (\S+)", line)
            if not m:
                raise LayeringError(
                    f"{where_line}: expected 'exception FOLDER -> UNIT', got "
                    f"'{line}'")
            rules.exceptions.add((m.group(1), m.group(2)))
        elif head == "outside":
            rules.outside.update(words[1:])
        else:
            raise LayeringError(
                f"{where_line}: unknown statement '{head}'; expected layer, "
                "unit, uses, exception or outside")
    if end is None:
        raise LayeringError(f"{where}: the ```layering block is not closed")
    if not rules.layers:
        raise LayeringError(f"{where}: the ```layering block names no layer")
    for name, (home, _) in rules.units.items():
        if home not in rules.layers:
            raise LayeringError(
                f"{where}: unit '{name}' lives in '{home}', which is on no layer")
        for folder in rules.unit_uses.get(name, ()):
            if folder not in rules.layers:
                raise LayeringError(
                    f"{where}: unit '{name}' uses '{folder}', which is on no "
                    "layer")
    for folder, unit in rules.exceptions:
        if folder not in rules.layers:
            raise LayeringError(
                f"{where}: exception from '{folder}', which is on no layer")
        if unit not in rules.units:
            raise LayeringError(
                f"{where}: exception to '{unit}', which is no unit; units: "
                f"{', '.join(sorted(rules.units)) or 'none'}")
    return rules


def unit_of(path, rules):
    """The unit a repository-relative path belongs to, or None."""
    for name, (_, prefixes) in rules.units.items():
        for p in prefixes:
            if path == p or (p.endswith("/") and path.startswith(p)):
                return name
    return None


def is_source(name):
    return name.endswith(SOURCE_SUFFIXES)


def resolve(root, source, quote, target, rules):
    """The repository path an include names, or None for a third-party one.

    clinrl includes its headers by their path from the repository root
    ("core/error.h"); a quoted include relative to the including file is
    resolved too, so "../trainer/x.h" cannot slip past the check.
    """
    first = target.split("/", 1)[0]
    if first in rules.layers:
        return target
    if quote == '"':
        candidate = os.path.normpath(
            os.path.join(os.path.dirname(source), target))
        if (not candidate.startswith("..") and
                os.path.exists(os.path.join(root, candidate))):
            return candidate.replace(os.sep, "/")
    return None


def check_arrow(source, target, rules):
    """None when `source` may include `target`, else the reason it may not."""
    src_folder = source.split("/", 1)[0]
    dst_folder = target.split("/", 1)[0]
    src_unit = unit_of(source, rules)
    dst_unit = unit_of(target, rules)
    if src_unit is not None:
        if dst_unit == src_unit:
            return None
        allowed = rules.unit_uses.get(src_unit, set())
        if dst_unit is None and dst_folder in allowed:
            return None
        return (f"{source} is part of unit {src_unit}, which may use only "
                f"itself and {', '.join(sorted(allowed)) or 'nothing else'}")
    if dst_unit is not None:
        home = rules.units[dst_unit][0]
        if home == src_folder:
            return None
        if (src_folder, dst_unit) in rules.exceptions:
            return None
        if rules.layers[home] < rules.layers[src_folder]:
            return None
        return (f"{src_folder}/ may not include {dst_unit} (in {home}/): no "
                f"exception '{src_folder} -> {dst_unit}' in {DESIGN}")
    if dst_folder == src_folder:
        return None
    if dst_folder not in rules.layers:
        return (f"{target} is outside the layered folders of {DESIGN}; "
                "library code includes only library headers")
    src_layer, dst_layer = rules.layers[src_folder], rules.layers[dst_folder]
    if dst_layer < src_layer:
        return None
    lower = sorted(f for f, l in rules.layers.items() if l < src_layer)
    where = "beside it" if dst_layer == src_layer else "above it"
    return (f"{src_folder}/ (layer {src_layer}) may not include {dst_folder}/ "
            f"(layer {dst_layer}, {where}); it may include its own folder and "
            f"{', '.join(lower) or 'no other'}")


def scan(root, rules):
    """Checks every source file under the layered folders of `root`.

    Returns (violations, stats): violations are 'file:line: #include ...: why'
    strings; stats counts files and includes and lists the exceptions used.
    """
    violations = []
    stats = {"files": 0, "includes": 0, "exceptions_used": {}}
    for top in sorted(os.listdir(root)):
        path = os.path.join(root, top)
        if (not os.path.isdir(path) or top in SKIPPED_DIRS or
                top.startswith(".")):
            continue
        if top in rules.layers or top in rules.outside:
            continue
        for dirpath, dirnames, filenames in os.walk(path):
            # A CMake build tree (any name) holds generated and CMake's own
            # C++ files, a Python venv its packages' headers: none of them
            # clinrl's sources.
            if "CMakeCache.txt" in filenames or "pyvenv.cfg" in filenames:
                dirnames[:] = []
                continue
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
            sources = [f for f in filenames if is_source(f)]
            if sources:
                first = os.path.relpath(os.path.join(dirpath, sources[0]), root)
                violations.append(
                    f"{first}: folder {top}/ holds C++ sources but is on no "
                    f"layer of {DESIGN} (add it to a layer, or to 'outside')")
                break
    for folder in sorted(rules.layers, key=lambda f: (rules.layers[f], f)):
        base = os.path.join(root, folder)
        if not os.path.isdir(base):
            violations.append(
                f"{DESIGN}: layer folder {folder}/ does not exist in {root}")
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
            for name in sorted(filenames):
                if not is_source(name):
                    continue
                full = os.path.join(dirpath, name)
                source = os.path.relpath(full, root).replace(os.sep, "/")
                stats["files"] += 1
                with open(full, encoding="utf-8", errors="replace") as f:
                    for number, line in enumerate(f, start=1):
                        m = INCLUDE_RE.match(line)
                        if not m:
                            continue
                        target = resolve(root, source, m.group(1), m.group(2),
                                         rules)
                        if target is None:
                            continue
                        stats["includes"] += 1
                        why = check_arrow(source, target, rules)
                        shown = f"#include {m.group(1)}{m.group(2)}" + (
                            '"' if m.group(1) == '"' else ">")
                        if why is not None:
                            violations.append(
                                f"{source}:{number}: {shown}: {why}")
                            continue
                        dst_unit = unit_of(target, rules)
                        src_folder = source.split("/", 1)[0]
                        if (dst_unit is not None and
                                unit_of(source, rules) is None and
                                (src_folder, dst_unit) in rules.exceptions and
                                rules.units[dst_unit][0] != src_folder):
                            stats["exceptions_used"].setdefault(
                                (src_folder, dst_unit), []).append(
                                    f"{source}:{number}")
    for folder, unit in sorted(rules.exceptions):
        if (folder, unit) not in stats["exceptions_used"]:
            violations.append(
                f"{DESIGN}: the exception '{folder} -> {unit}' is no longer "
                "used by any include; remove it from the page")
    return violations, stats


def check_repository(root):
    with open(os.path.join(root, DESIGN), encoding="utf-8") as f:
        rules = parse_rules(f.read())
    return scan(root, rules)


# A small stand-in for docs/design.md's block, for the tests of the checker.
SAMPLE_BLOCK = """
```layering
layer core
layer envs rewards
layer trainer
unit grading in envs: envs/grading/ envs/time.h
uses grading: core
exception rewards -> grading
outside tests
```
"""


class FakeTree:
    """A throwaway source tree with a docs/design.md, for checker tests."""

    def __init__(self, files, block=SAMPLE_BLOCK):
        self.dir = tempfile.TemporaryDirectory()
        self.root = self.dir.name
        files = dict(files)
        files[DESIGN] = block
        for folder in ("core", "envs", "rewards", "trainer"):
            os.makedirs(os.path.join(self.root, folder), exist_ok=True)
        for rel, text in files.items():
            full = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)

    def check(self):
        return check_repository(self.root)

    def close(self):
        self.dir.cleanup()


GOOD_FILES = {
    "core/error.h": "#pragma once\n#include <string>\n",
    "envs/env.cc": '#include "core/error.h"\n#include "envs/grading/g.h"\n',
    "envs/time.h": "#pragma once\n",
    "envs/grading/g.h": '#include "core/error.h"\n#include "envs/time.h"\n',
    "rewards/r.cc": '#include "envs/grading/g.h"\n#include "core/error.h"\n',
    "trainer/t.cc": '#include "envs/env.h"\n#include "rewards/r.h"\n',
    "tests/x_test.cc": '#include "trainer/t.h"\n',
}


class LayeringTest(unittest.TestCase):

    def test_repository_follows_the_graph_of_docs_design(self):
        violations, stats = check_repository(ROOT)
        self.assertGreater(stats["files"], 100,
                           f"found only {stats['files']} source files under "
                           f"{ROOT}: is the root right?")
        if violations:
            self.fail(f"{len(violations)} include(s) break the layering rule:\n"
                      + "\n".join(violations) + "\nThe allowed folder graph "
                      f"is the ```layering block of {DESIGN}.")
        used = "; ".join(f"{a} -> {b} at {', '.join(where)}"
                         for (a, b), where in
                         sorted(stats["exceptions_used"].items()))
        print(f"\nlayering: {stats['files']} files, {stats['includes']} "
              f"project includes checked; exceptions used: {used or 'none'}",
              file=sys.stderr)

    def check_files(self, files, block=SAMPLE_BLOCK):
        tree = FakeTree(files, block)
        try:
            return tree.check()[0]
        finally:
            tree.close()

    def test_allowed_arrows_pass(self):
        self.assertEqual(self.check_files(GOOD_FILES), [])

    def test_upward_include_names_file_line_and_include(self):
        files = dict(GOOD_FILES)
        files["core/bad.cc"] = ('#include "core/error.h"\n\n'
                                '#include "trainer/t.h"\n')
        violations = self.check_files(files)
        self.assertEqual(len(violations), 1, violations)
        self.assertTrue(
            violations[0].startswith(
                'core/bad.cc:3: #include "trainer/t.h": core/ (layer 0) may '
                "not include trainer/ (layer 2, above it)"), violations[0])

    def test_sibling_include_is_refused(self):
        files = dict(GOOD_FILES)
        files["envs/bad.h"] = '#include "rewards/r.h"\n'
        violations = self.check_files(files)
        self.assertEqual(len(violations), 1, violations)
        self.assertIn("envs/bad.h:1:", violations[0])
        self.assertIn("beside it", violations[0])

    def test_relative_and_angle_includes_are_resolved(self):
        files = dict(GOOD_FILES)
        files["core/rel.cc"] = '#include "../trainer/t.cc"\n'
        files["core/angle.cc"] = "#include <trainer/t.h>\n"
        violations = self.check_files(files)
        self.assertEqual(len(violations), 2, violations)
        self.assertTrue(any(v.startswith("core/rel.cc:1:") for v in violations))
        self.assertTrue(
            any(v.startswith("core/angle.cc:1:") for v in violations))

    def test_exception_reaches_only_its_unit(self):
        files = dict(GOOD_FILES)
        files["rewards/bad.cc"] = '#include "envs/env.h"\n'
        violations = self.check_files(files)
        self.assertEqual(len(violations), 1, violations)
        self.assertIn("rewards/bad.cc:1:", violations[0])

    def test_unit_may_not_use_the_rest_of_its_folder(self):
        files = dict(GOOD_FILES)
        files["envs/grading/g.cc"] = '#include "envs/env.h"\n'
        violations = self.check_files(files)
        self.assertEqual(len(violations), 1, violations)
        self.assertIn("envs/grading/g.cc:1:", violations[0])
        self.assertIn("unit grading", violations[0])

    def test_unused_exception_is_reported(self):
        files = dict(GOOD_FILES)
        files["rewards/r.cc"] = '#include "core/error.h"\n'
        violations = self.check_files(files)
        self.assertEqual(len(violations), 1, violations)
        self.assertIn("'rewards -> grading' is no longer used", violations[0])

    def test_folder_on_no_layer_is_reported(self):
        files = dict(GOOD_FILES)
        files["serve/s.cc"] = '#include "trainer/t.h"\n'
        violations = self.check_files(files)
        self.assertEqual(len(violations), 1, violations)
        self.assertIn("folder serve/ holds C++ sources but is on no layer",
                      violations[0])

    def test_build_trees_and_hidden_folders_are_not_sources(self):
        files = dict(GOOD_FILES)
        files["build-debug/CMakeCache.txt"] = ""
        files["build-debug/gen/assets.cc"] = '#include "trainer/t.h"\n'
        files[".cache/x.cc"] = '#include "trainer/t.h"\n'
        self.assertEqual(self.check_files(files), [])

    def test_commented_out_include_is_ignored(self):
        files = dict(GOOD_FILES)
        files["core/c.cc"] = '// #include "trainer/t.h"\n'
        self.assertEqual(self.check_files(files), [])

    def test_missing_or_malformed_block_is_an_error(self):
        with self.assertRaisesRegex(LayeringError, "no ```layering block"):
            parse_rules("# design\n")
        with self.assertRaisesRegex(LayeringError, "unknown statement 'levle'"):
            parse_rules("```layering\nlevle core\n```\n")
        with self.assertRaisesRegex(LayeringError, "not closed"):
            parse_rules("```layering\nlayer core\n")
        with self.assertRaisesRegex(LayeringError, "which is no unit"):
            parse_rules("```layering\nlayer core\nlayer a b\n"
                        "exception a -> nothing\n```\n")


if __name__ == "__main__":
    unittest.main()
