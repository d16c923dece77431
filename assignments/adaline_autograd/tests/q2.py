OK_FORMAT = True

test = {
    "name": "q2",
    "points": None,
    "suites": [
        {
            "cases": [
                {
                    "name": "q2 - train_autograd returns one loss per epoch",
                    "code": r"""
>>> def _q2_cost_list():
...     import contextlib, io, torch
...     x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [0.5, -1.0], [-2.0, 0.0]])
...     y = torch.tensor([0, 1, 1, 0], dtype=torch.int)
...     with contextlib.redirect_stdout(io.StringIO()):
...         costs = train_autograd(Adaline2(2), x, y, num_epochs=3, learning_rate=0.1, seed=0,
...                                minibatch_size=2)
...     assert costs is not None and hasattr(costs, "__len__"), (
...         f"train_autograd should return the list of per-epoch losses, got {costs!r}")
...     assert len(costs) == 3, (
...         f"with num_epochs=3 the list should have 3 entries (one per epoch), got {len(costs)}")
...     for cost in costs:
...         assert not getattr(cost, "requires_grad", False), (
...             "a logged loss still carries a computation graph: compute it under torch.no_grad()")
...         float(cost)  # each entry is one number
>>> _q2_cost_list()
""",
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": "q2 - one epoch of train_autograd on a tiny data set",
                    "code": r"""
>>> def _q2_tiny_run():
...     import contextlib, io, torch
...     x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
...     y = torch.tensor([0, 1], dtype=torch.int)
...     model = Adaline2(2)
...     with contextlib.redirect_stdout(io.StringIO()):
...         costs = train_autograd(model, x, y, num_epochs=1, learning_rate=0.1, seed=0,
...                                minibatch_size=2)
...     # One full-batch step from zero moves the weight to [[0.3], [0.4]] and the bias to [0.1].
...     weight = model.weight.detach().reshape(-1).tolist()
...     assert torch.allclose(torch.tensor(weight), torch.tensor([0.3, 0.4]), atol=1e-5), (
...         f"after one full-batch step (learning rate 0.1) model.weight should be [[0.3], [0.4]], "
...         f"got {weight} (step against the gradient: add learning_rate * negative gradient)")
...     bias = model.bias.detach().reshape(-1).tolist()
...     assert torch.allclose(torch.tensor(bias), torch.tensor([0.1]), atol=1e-5), (
...         f"after one full-batch step model.bias should be [0.1], got {bias}")
...     assert abs(float(costs[0]) - 2.0) < 1e-4, (
...         f"after one full-batch epoch the MSE should be 2.0, got {float(costs[0]):.5f}")
>>> _q2_tiny_run()
""",
                    "hidden": False,
                    "locked": False,
                },
            ],
            "scored": True,
            "setup": "",
            "teardown": "",
            "type": "doctest",
        }
    ],
}
