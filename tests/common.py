"What the integration tests share: the repository root, the smoke settings, a fingerprint of a folder."
import hashlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE = dict(preset='smoke', device='cpu', seed=0)


def files(root: Path) -> dict:
    "Every file under `root` (relative path → sha256)."
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob('*') if p.is_file()}
