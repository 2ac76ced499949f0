"""The `teacher-check` subcommand: does a teacher share the student's tokenizer (before a distillation run)?"""

from __future__ import annotations


def cmd_teacher_check(args) -> None:
    from workbench import models
    from workbench.methods.kit import teacher as teachers
    from workbench.run.model_refs import resolve_ref

    student = models.resolve(resolve_ref(args.name, args.base or "base"))
    teacher = teachers.resolve(args.name, args.teacher, lambda message, progress=None: None)
    teachers.require_same_tokenizer(student, teacher)  # raises, naming every difference
    print(f"The teacher {args.teacher} shares the student's tokenizer ({models.describe(str(student))}).")


def add_parsers(sub) -> None:
    p = sub.add_parser("teacher-check", help="check that a teacher shares the student's tokenizer (distill, gkd)")
    p.add_argument("name")
    p.add_argument("teacher", help="run:<id>, run:<id>/checkpoint-N or a model folder")
    p.add_argument("--base", metavar="MODEL", help="the student (default: the project's base model)")
    p.set_defaults(func=cmd_teacher_check)
