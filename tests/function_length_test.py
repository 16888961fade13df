"""Function length: no function body in trainer/ or rollout/ over the limit.

Those two folders are where algorithm changes land (docs/style.md), so a
newcomer must be able to read each function on one screen. The scan strips
comments and literals, follows braces, and counts a function's lines from
its signature's `{` to its closing `}`, lambdas included. Run with a folder
(or file) argument to check something else, e.g. on a copy with a long
function added, which must fail.
"""
import os
import re
import sys
import unittest

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
FOLDERS = ("trainer", "rollout")
MAX_LINES = 120

_SCOPE = re.compile(r"\b(namespace|class|struct|union|enum)\b")


def strip_code(text):
    """Comments, string and char literals blanked; newlines kept."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (min(j + 1, n) - i))
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def function_lengths(text):
    """[(first line, line count, signature)] of each top-level function."""
    code = strip_code(text)
    stack = []  # "scope" | "function" | "other", one per open brace
    functions = []
    header_start = 0
    line = 1
    start_line = {}
    stack_pop_was_fn = False
    for i, c in enumerate(code):
        if c == "\n":
            line += 1
        elif c == "{":
            header = code[header_start:i]
            in_function = "function" in stack
            # After a constructor's brace-initialised member (`: a_{1}, b_(2)
            # {`), the next brace continues the function already recorded.
            continuation = functions and not in_function and (
                header.strip().startswith(",") or
                (not header.strip() and stack_pop_was_fn))
            if in_function:
                kind = "other"
            elif continuation:
                kind = "function"
            elif _SCOPE.search(header) and "(" not in header:
                kind = "scope"
            elif ")" in header:
                kind = "function"
            else:
                kind = "other"
            if continuation:
                first, _, sig = functions.pop()
                start_line[len(stack)] = (first, sig)
            else:
                sig = " ".join(header.split())[-80:]
                start_line[len(stack)] = (line, sig)
            stack.append(kind)
            header_start = i + 1
        elif c == "}":
            kind = stack.pop() if stack else "other"
            stack_pop_was_fn = kind == "function"
            if kind == "function":
                first, sig = start_line[len(stack)]
                functions.append((first, line - first + 1, sig))
            header_start = i + 1
            continue
        elif c == ";":
            header_start = i + 1
        if c in "{;":
            stack_pop_was_fn = False
    return functions


def too_long(paths):
    found = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for first, count, sig in function_lengths(f.read()):
                if count > MAX_LINES:
                    rel = os.path.relpath(path, ROOT)
                    found.append(f"{rel}:{first}: {count} lines (limit "
                                 f"{MAX_LINES}): {sig}")
    return found


def sources(targets):
    for target in targets:
        if os.path.isfile(target):
            yield target
            continue
        for dirpath, _, files in os.walk(target):
            for name in sorted(files):
                if name.endswith(".cc"):
                    yield os.path.join(dirpath, name)


class FunctionLengthTest(unittest.TestCase):
    def test_scanner_measures_functions(self):
        text = (
            "namespace a {\nstruct S { int x; };\nint f(int y) {\n"
            "  auto g = [&] { return y; };\n  if (y) {\n    return g();\n"
            "  }\n  return 0;\n}\nFoo::Foo() : a_{1}, b_(2) {\n  x();\n}\n"
            "const char* k = \"{\";  // }\n}  // namespace a\n")
        self.assertEqual([(first, count) for first, count, _ in
                          function_lengths(text)], [(3, 7), (10, 3)])

    def test_long_function_is_found(self):
        body = "int f() {\n" + "  x();\n" * MAX_LINES + "}\n"
        [(first, count, _)] = function_lengths(body)
        self.assertEqual((first, count), (1, MAX_LINES + 2))

    def test_trainer_and_rollout_functions_fit_on_a_screen(self):
        targets = TARGETS or [os.path.join(ROOT, f) for f in FOLDERS]
        found = too_long(sources(targets))
        self.assertEqual(found, [], "\n" + "\n".join(found))


TARGETS = []

if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    TARGETS.extend(os.path.abspath(a) for a in args)
    unittest.main(argv=[sys.argv[0]] + [a for a in sys.argv[1:]
                                        if a.startswith("-")])
