"""The child process of isolated grading (valuegraph.isolation), run as `python -m valuegraph.child`.

It imports the student's module, then for each graph the parent sends builds it with the student's
class, runs the student's backward and answers what the class computed (valuegraph.grading.computed),
as plain JSON. It never talks to the service: the parent, which never imports the student's module,
grades the answers.

Messages are one JSON object a line: the parent's on the child's stdin, the child's answers on its
stdout. Before any student code runs, both are moved to other file descriptors; fd 0 then reads
/dev/null, and fd 1 and fd 2 both go to the parent's capture pipe, so that what the student's code
prints (or reads) never mixes with the messages. After each graph the child writes the parent's
marker to the capture pipe, which tells the parent where one graph's output ends.

The child says {"ready": true} once it has started. The parent's messages: {"load": "MODULE:CLASS",
"memory_limit": BYTES | null} first, then {"graph": GRAPH, "fields": [...]} for each graph. The
answers: {"loaded": true}, {"missing": WORDS} (no such module or class) or {"error": WORDS}
(importing it raised); then for each graph {"submitted": [...]} or {"error": WORDS, "kind":
"student-error" | "not-built"}.
"""

import contextlib
import importlib
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

from valuegraph.grading import ClassNotFound, NotGraded, computed


def main(marker: bytes) -> None:
    """Serve the parent until its messages end; `marker` ends each answer's part of what is printed."""
    messages = os.fdopen(os.dup(0), "rb")
    answers = os.fdopen(os.dup(1), "wb")
    _hide_the_channel()
    ends = _Ends(os.dup(2), marker)  # its own fd: the student's code may close or replace fd 2
    _answer(answers, ends, {"ready": True})
    request = _read(messages)
    if request is None:
        return
    _limit_memory(request.get("memory_limit"))
    try:
        value_class = load_class(request["load"])
    except ClassNotFound as error:
        _answer(answers, ends, {"missing": str(error)})
        return
    except BaseException as error:  # whatever importing the student's module does
        _answer(answers, ends, {"error": f"Importing {_module_of(request['load'])} raised {_described(error)}"})
        return
    _answer(answers, ends, {"loaded": True})
    while (request := _read(messages)) is not None:
        try:
            answer: dict = {"submitted": computed(value_class, request["graph"], request["fields"])}
        except NotGraded as error:
            answer = {"error": str(error), "kind": error.kind}
        except BaseException as error:  # KeyboardInterrupt and the like, raised by the student
            answer = {"error": f"The class raised {_described(error)}", "kind": "student-error"}
        _answer(answers, ends, answer)


def _hide_the_channel() -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)


def _limit_memory(limit: int | None) -> None:
    if limit is None:
        return
    try:
        import resource
    except ImportError:  # not on POSIX: no limit
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))  # the hard limit too: the student cannot raise it


def _read(messages: BinaryIO) -> dict | None:
    line = messages.readline()
    return json.loads(line) if line else None


class _Ends(NamedTuple):
    """Where and what to write to end one answer's part of what is printed."""

    fd: int
    marker: bytes


def _answer(answers: BinaryIO, ends: _Ends, answer: dict) -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):  # the student may have replaced or closed them
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(ends.fd, ends.marker)
    answers.write(json.dumps(answer, allow_nan=False).encode() + b"\n")
    answers.flush()


def _described(error: BaseException) -> str:
    try:
        text = str(error)
    except BaseException:  # the student's own __str__
        text = ""
    name = type(error).__name__
    return f"{name}: {text}" if text else name


def load_class(spec: str) -> Any:
    """The class named by MODULE:CLASS, MODULE a dotted module (found from the current directory too)
    or the path of a .py file, CLASS "Value" when left out. Raises ClassNotFound when there is no
    such module or class; whatever importing the module raises goes through."""
    module_name, class_name = _module_of(spec), spec.rpartition(":")[2] if ":" in spec else "Value"
    class_name = class_name or "Value"
    if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
        module = _module_from_file(Path(module_name))
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is not None and (module_name == error.name or module_name.startswith(error.name + ".")):
                raise ClassNotFound(f"There is no module {module_name}.") from None
            raise
    try:
        return getattr(module, class_name)
    except AttributeError:
        raise ClassNotFound(f"{module_name} has no {class_name}.") from None


def _module_of(spec: str) -> str:
    return spec.rpartition(":")[0] if ":" in spec else spec


def _module_from_file(path: Path) -> Any:
    if not path.is_file():
        raise ClassNotFound(f"There is no file {path}.")
    directory = str(path.resolve().parent)
    if directory not in sys.path:  # the student's module may import its neighbours
        sys.path.insert(0, directory)
    name = path.stem if path.stem not in sys.modules else f"valuegraph_student_{path.stem}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ClassNotFound(f"{path} is not a Python module.")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # as an import would: dataclasses and pickle look the module up there
    module_spec.loader.exec_module(module)
    return module
