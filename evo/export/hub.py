"""``evo export --push-to-hub REPO``: the exported folder to the Hugging Face Hub, with
``datasets``' own push (data and ``dataset_info``), then evo's card and heatmap on top."""

from __future__ import annotations

from pathlib import Path

from evo.errors import EvoError


def push_to_hub(folder: str | Path, repo: str, private: bool = False) -> str:
    """Pushes the dataset exported to ``folder``; returns the repo's URL."""
    from datasets import load_dataset
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "README.md").is_file():
        raise EvoError(f"{folder} is not an exported dataset (no README.md)")
    dd = load_dataset(str(folder))
    dd.push_to_hub(repo, private=private, commit_message="evo export")
    api = HfApi()
    for name in ("README.md", "heatmap.png"):
        if (folder / name).is_file():
            api.upload_file(path_or_fileobj=str(folder / name), path_in_repo=name, repo_id=repo,
                            repo_type="dataset", commit_message=f"evo export: {name}")
    return f"https://huggingface.co/datasets/{repo}"
