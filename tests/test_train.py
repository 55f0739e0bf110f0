import pytest
import torch
from torch import nn

from lecture_utils.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from lecture_utils.data import BatchIterator
from lecture_utils.autoencoders import autoencoder_step
from lecture_utils.train import DivergenceError, adam, batched_inference, fit


class NotAWeight:
    pass


def regression_problem(seed=0, n=256):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    w = torch.tensor([[1.5], [-2.0], [0.5], [3.0]])
    y = x @ w + 0.01 * torch.randn(n, 1, generator=g)
    return x, y


def make_run(seed=0, lr=0.05, dropout=0.0):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Dropout(dropout), nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    x, y = regression_problem()
    batches = BatchIterator(x, y, batch_size=32, seed=seed)

    def step(batch):
        xb, yb = batch
        loss = nn.functional.mse_loss(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"mse": loss.detach()}

    return model, opt, batches, step


def test_loss_decreases_and_history_is_recorded():
    model, opt, batches, step = make_run()
    history = fit(step, batches, epochs=8, progress=False)
    assert len(history) == 8
    assert history["mse"][-1] < 0.1 * history["mse"][0]
    record = history.last
    assert record["epoch"] == 8 and record["steps"] == 8 and record["images"] == 256
    assert record["wall_time_s"] > 0 and record["images_per_s"] > 0
    assert history.images_per_s > 0


def test_nan_guard_fires_with_a_clear_message(tmp_path):
    model, opt, batches, step = make_run()
    calls = {"n": 0}

    def exploding(batch):
        calls["n"] += 1
        out = step(batch)
        if calls["n"] > 12:
            return {"mse": torch.tensor(float("nan"))}
        return out

    with pytest.raises(DivergenceError, match=r"'mse' became NaN or infinite in epoch 2.*last good checkpoint.*epoch 1"):
        fit(exploding, batches, epochs=5, progress=False, guard_every=1, checkpoint=tmp_path / "c.pt")
    assert calls["n"] == 13  # stopped at once with guard_every=1
    with pytest.raises(DivergenceError, match="no checkpoint was written"):
        fit(lambda b: {"loss": torch.tensor(float("inf"))}, batches, epochs=1, progress=False)


def test_resume_matches_an_uninterrupted_run(tmp_path):
    # dropout makes the run depend on the global RNG, which the checkpoint must restore too
    model_a, opt_a, batches_a, step_a = make_run(dropout=0.2)
    fit(step_a, batches_a, epochs=6, progress=False)

    model_b, opt_b, batches_b, step_b = make_run(dropout=0.2)
    path = tmp_path / "run.pt"
    fit(step_b, batches_b, epochs=3, progress=False, checkpoint=path, state={"model": model_b, "opt": opt_b})
    torch.manual_seed(999)  # a new process would start from another RNG state

    model_c, opt_c, batches_c, step_c = make_run(seed=5, dropout=0.2)  # different init and data order
    history = fit(step_c, batches_c, epochs=6, progress=False, checkpoint=path, resume=True,
                  state={"model": model_c, "opt": opt_c})
    assert [r["epoch"] for r in history.records] == [1, 2, 3, 4, 5, 6]
    for p, q in zip(model_a.parameters(), model_c.parameters()):
        assert torch.equal(p, q)


def test_checkpoint_is_atomic_and_loaded_weights_only(tmp_path):
    path = tmp_path / "sub" / "c.pt"
    save_checkpoint(path, {"w": torch.arange(3)})
    assert torch.equal(load_checkpoint(path)["w"], torch.arange(3))
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temporary left behind

    torch.save({"x": NotAWeight()}, path)  # arbitrary pickled code: weights_only refuses it
    with pytest.raises(CheckpointError, match="corrupted or not a torch checkpoint"):
        load_checkpoint(path)


def test_corrupted_checkpoint_raises_clear_error(tmp_path):
    model, opt, batches, step = make_run()
    path = tmp_path / "c.pt"
    fit(step, batches, epochs=1, progress=False, checkpoint=path, state={"model": model})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupted.*delete it and train again"):
        fit(step, batches, epochs=2, progress=False, checkpoint=path, resume=True, state={"model": model})
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_mismatched_checkpoint_names_the_object(tmp_path):
    model, opt, batches, step = make_run()
    path = tmp_path / "c.pt"
    fit(step, batches, epochs=1, progress=False, checkpoint=path, state={"model": model})
    other = nn.Linear(3, 3)
    with pytest.raises(CheckpointError, match="does not match 'model'"):
        fit(step, batches, epochs=2, progress=False, checkpoint=path, resume=True, state={"model": other})


def test_autoencoder_step_reduces_cross_entropy():
    torch.manual_seed(0)
    from lecture_utils.models.autoencoder import MLPAutoencoder

    x = (torch.rand(128, 1, 28, 28) > 0.7).float()
    model = MLPAutoencoder(code_size=8, hidden=(64,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    reference = nn.functional.binary_cross_entropy_with_logits(model(x), x, reduction="sum").item() / 128
    history = fit(autoencoder_step(model, opt), BatchIterator(x, batch_size=32), epochs=5, progress=False)
    assert history["loss"][0] == pytest.approx(reference, rel=0.05)
    assert history["loss"][-1] < history["loss"][0]


def test_fit_rejects_bad_epochs():
    model, opt, batches, step = make_run()
    with pytest.raises(ValueError, match="epochs must be a non-negative int"):
        fit(step, batches, epochs=-1)


def test_batched_inference_runs_in_eval_mode_without_gradients_and_restores_the_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2))
    model(torch.randn(64, 3))                                  # running statistics that differ from a batch's
    x = torch.randn(23, 3)
    out = batched_inference(model, x, batch_size=5)            # 5 batches, the last of 3 rows
    assert model.training, "the caller's mode is restored"
    model.eval()
    with torch.no_grad():
        expected = model(x)                                    # eval mode: no dropout, running statistics
    assert out.shape == (23, 2) and not out.requires_grad and out.device.type == "cpu"
    torch.testing.assert_close(out, expected)
    two = batched_inference(model, x, x[:, :1], batch_size=4, call=lambda a, b: a[:, :2] * b)
    torch.testing.assert_close(two, x[:, :2] * x[:, :1])
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        batched_inference(model, x, batch_size=0)
    with pytest.raises(ValueError, match="same number of rows"):
        batched_inference(model, x, x[:3], call=lambda a, b: a)


def test_adam_is_the_fused_kernel_on_cpu_and_refuses_bad_arguments():
    model = nn.Linear(3, 1)
    optimizer = adam(model.parameters(), lr=1e-2, betas=(0.5, 0.999))
    assert optimizer.defaults["fused"] and optimizer.defaults["betas"] == (0.5, 0.999)
    reference = torch.optim.Adam(nn.Linear(3, 1).parameters(), lr=1e-2, betas=(0.5, 0.999))
    reference.param_groups[0]["params"][0].data.copy_(model.weight.data)
    reference.param_groups[0]["params"][1].data.copy_(model.bias.data)
    x = torch.randn(16, 3)
    for opt, params in ((optimizer, list(model.parameters())), (reference, reference.param_groups[0]["params"])):
        for _ in range(3):
            opt.zero_grad()
            (x @ params[0].T + params[1]).pow(2).mean().backward()
            opt.step()
    torch.testing.assert_close(model.weight.data, reference.param_groups[0]["params"][0].data)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        adam(model.parameters(), lr=-1e-3)
    with pytest.raises(ValueError, match="at least one tensor"):
        adam([], lr=1e-3)
