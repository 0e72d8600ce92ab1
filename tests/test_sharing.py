"""A model shared by every visitor stays the same model: threads look into it, knock channels out, take gradients
and train beside it at once, and nobody sees what another did."""
from __future__ import annotations

import dataclasses
import threading

import torch

from layerlens.attribution import knocked_out, occlusion_map, saliency_map
from layerlens.features import visualise_channels
from layerlens.inspection import layer_outputs, neuron_sum
from layerlens.training import evaluate, fit, weights_digest


def run_together(*jobs, repeat: int = 1) -> list:
    """Run every job `repeat` times in its own thread, all at once; return each job's results."""
    results = [[] for _ in jobs]
    errors = []
    start = threading.Barrier(len(jobs))

    def worker(i, job):
        try:
            start.wait()
            for _ in range(repeat):
                results[i].append(job())
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    return results


def test_a_knock_out_in_one_thread_changes_nothing_another_thread_sees(tiny_result, tiny_data):
    model, x = tiny_result.model, tiny_data.x_test
    with torch.no_grad():
        reference = model(x)
    knocked = knocked_out(model, "act1", [0, 1, 2])

    def knock():
        with torch.no_grad():
            return knocked(x)

    def plain():
        with torch.no_grad():
            return model(x)

    knocks, plains = run_together(knock, plain, repeat=200)
    changed = sum(not torch.equal(out, reference) for out in plains)
    assert changed == 0, f"{changed} of {len(plains)} forward passes saw the other thread's knock-out"
    assert all(not torch.equal(out, reference) for out in knocks)  # the knock-out itself did change the answers


def test_layer_outputs_and_neuron_sums_from_many_threads_agree(tiny_result, tiny_data):
    model, image = tiny_result.model, tiny_data.x_test[0]
    reference = layer_outputs(model, image[None])
    neuron = neuron_sum(model, image, "conv2", 1, 2, 3)

    def look():
        outputs = layer_outputs(model, image[None])
        return all(torch.equal(outputs[n], reference[n]) for n in reference) and \
            neuron_sum(model, image, "conv2", 1, 2, 3).total == neuron.total

    for results in run_together(look, look, look, repeat=50):
        assert all(results)


def test_gradients_never_land_on_a_shared_model(tiny_result, tiny_data):
    model = tiny_result.model
    before = weights_digest(model)
    threads_before = torch.get_num_threads()
    image = tiny_data.x_test[1]
    reference = saliency_map(model, image, 0)

    def explain():
        same = torch.equal(saliency_map(model, image, 0), reference)
        occlusion_map(model, image, 0, patch=4)
        visualise_channels(model, "act1", [0, 1], steps=3)
        return same

    for results in run_together(explain, explain, repeat=5):
        assert all(results)
    assert all(p.grad is None for p in model.parameters())
    assert not model.training
    assert weights_digest(model) == before
    assert torch.get_num_threads() == threads_before  # no one changed the process-wide thread count


def test_training_gives_the_same_model_while_other_threads_use_torchs_global_generator(tiny_config, tiny_data):
    # dropout and mirror flips draw random numbers on every step: they must come from the run's own generators
    config = dataclasses.replace(tiny_config, augment=True, epochs=3,
                                 net=dataclasses.replace(tiny_config.net, dropout=0.3))
    alone = fit(config, tiny_data)
    stop = threading.Event()

    def noise():
        while not stop.is_set():
            torch.manual_seed(int(torch.randint(0, 10_000, (1,))))
            torch.rand(100)
            torch.nn.functional.dropout(torch.ones(50), 0.5, training=True)

    noisy = threading.Thread(target=noise)
    noisy.start()
    try:
        crowded = fit(config, tiny_data)
    finally:
        stop.set()
        noisy.join()
    assert weights_digest(crowded.model) == weights_digest(alone.model)
    assert evaluate(crowded.model, tiny_data.x_test, tiny_data.y_test) == \
        evaluate(alone.model, tiny_data.x_test, tiny_data.y_test)


def test_every_entry_point_sets_openmp_to_sleep_before_torch_loads():
    """Spinning OpenMP threads made training 10× slower beside other work; the setting only counts if it is in
    the environment before torch (or scikit-learn) first loads OpenMP. app.py imports layerlens first, and every page
    runs inside app.py: st.navigation lists them all, so none is opened on its own."""
    import ast
    import os
    from pathlib import Path

    import layerlens  # noqa: F401

    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    root = Path(__file__).resolve().parents[1]
    imports = [node for node in ast.parse((root / "app.py").read_text()).body
               if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert isinstance(imports[0], ast.Import) and imports[0].names[0].name == "layerlens"
    import page_list

    assert sorted(p.path for p in page_list.PAGES) == sorted(f"pages/{f.name}" for f in (root / "pages").glob("*.py"))
