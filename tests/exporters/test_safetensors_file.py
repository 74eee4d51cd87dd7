"""irbridge's own safetensors writer and reader agree with the safetensors library, byte-stable."""

from __future__ import annotations

import pytest


def test_written_files_read_back_by_the_library_and_by_irbridge(tmp_path, torch):
    import safetensors.torch

    from irbridge.exporters.torch import safetensors_file

    g = torch.Generator().manual_seed(0)
    state = {"b.weight": torch.randn(3, 5, generator=g), "a.bias": torch.randn(7, generator=g).to(torch.bfloat16),
             "n.num_batches_tracked": torch.tensor(4), "h.half": torch.randn(2, 2, generator=g).half(),
             "e.empty": torch.zeros(0, 3), "m.mask": torch.tensor([True, False])}
    safetensors_file.write(tmp_path / "w.safetensors", state, {"producer": "irbridge", "format": "pt"})
    safetensors_file.write(tmp_path / "again.safetensors", dict(reversed(state.items())), {"format": "pt", "producer": "irbridge"})
    assert (tmp_path / "w.safetensors").read_bytes() == (tmp_path / "again.safetensors").read_bytes()
    theirs = safetensors.torch.load_file(str(tmp_path / "w.safetensors"))
    ours = safetensors_file.read(tmp_path / "w.safetensors")
    for name, t in state.items():
        assert torch.equal(theirs[name], t) and torch.equal(ours[name], t) and ours[name].dtype == t.dtype


def test_a_damaged_header_is_refused(tmp_path, torch):
    from irbridge.exporters.torch import safetensors_file

    safetensors_file.write(tmp_path / "w.safetensors", {"w": torch.ones(4)}, {})
    data = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "w.safetensors").write_bytes(data[:-4])
    with pytest.raises(ValueError, match="bytes for shape"):
        safetensors_file.read(tmp_path / "w.safetensors")
