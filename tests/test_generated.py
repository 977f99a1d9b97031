"""generated/ is exactly what scripts/gen_protos.py makes from protos/."""

from pathlib import Path

from conftest import load_gen_protos

GENERATED = Path(__file__).resolve().parent.parent / "generated"


def _files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_matches_the_protos(tmp_path):
    load_gen_protos().generate(tmp_path)
    fresh, committed = _files(tmp_path), _files(GENERATED)
    assert fresh, "gen_protos.py generated nothing"
    missing = sorted(set(fresh) - set(committed))
    extra = sorted(set(committed) - set(fresh))
    differ = sorted(name for name in set(fresh) & set(committed) if fresh[name] != committed[name])
    problems = [
        f"{label}: {', '.join(names)}"
        for label, names in (("missing from generated/", missing), ("not made by protoc", extra),
                             ("out of date", differ))
        if names
    ]
    assert not problems, (
        "generated/ is stale (" + "; ".join(problems) + "). Regenerate it with: python scripts/gen_protos.py"
    )
