OK_FORMAT = True

test = {
    "name": "q3",
    "points": None,
    "suites": [
        {
            "cases": [
                {
                    "name": "q3 - Adaline3 is an nn.Module with one zeroed nn.Linear(2, 1)",
                    "code": r"""
>>> def _q3_structure():
...     import torch
...     model = Adaline3(2)
...     assert isinstance(model, torch.nn.Module), "Adaline3 should subclass torch.nn.Module"
...     layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
...     assert len(layers) == 1, (
...         f"Adaline3 should hold exactly one torch.nn.Linear layer, found {len(layers)} "
...         "(assign it to an attribute such as self.linear so that it is registered)")
...     shape = (layers[0].in_features, layers[0].out_features)
...     assert shape == (2, 1), f"Adaline3(2) should use nn.Linear(2, 1), got nn.Linear{shape}"
...     parameters = list(model.parameters())
...     assert len(parameters) == 2, (
...         f"model.parameters() should yield 2 tensors (weight and bias), got {len(parameters)}")
...     assert all(float(p.detach().abs().sum()) == 0.0 for p in parameters), (
...         "the weight and the bias should start at zero (use .detach().zero_() on each)")
>>> _q3_structure()
""",
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": "q3 - Adaline3.forward returns shape (n,)",
                    "code": r"""
>>> def _q3_forward():
...     import torch
...     out = Adaline3(2)(torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
...     assert isinstance(out, torch.Tensor), f"forward should return a tensor, got {type(out)}"
...     assert tuple(out.shape) == (3,), (
...         f"forward on 3 examples should return shape (3,), got {tuple(out.shape)} "
...         "(nn.Linear gives (n, 1); .view(-1) makes it (n,))")
>>> _q3_forward()
""",
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": "q3 - train_nn on a tiny data set",
                    "code": r"""
>>> def _q3_tiny_run():
...     import contextlib, io, torch
...     x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
...     y = torch.tensor([0, 1], dtype=torch.int)
...     with contextlib.redirect_stdout(io.StringIO()):
...         costs = train_nn(Adaline3(2), x, y, num_epochs=3, learning_rate=0.1, seed=0,
...                          minibatch_size=2)
...     assert costs is not None and hasattr(costs, "__len__"), (
...         f"train_nn should return the list of per-epoch losses, got {costs!r}")
...     assert len(costs) == 3, (
...         f"with num_epochs=3 the list should have 3 entries (one per epoch), got {len(costs)}")
...     assert not any(getattr(c, "requires_grad", False) for c in costs), (
...         "a logged loss still carries a computation graph: compute it under torch.no_grad()")
...     # One full-batch SGD step from zero gives the outputs [1.2, 2.6] and an MSE of 2.0.
...     assert abs(float(costs[0]) - 2.0) < 1e-4, (
...         f"after the first full-batch epoch (learning rate 0.1) the MSE should be 2.0, "
...         f"got {float(costs[0]):.5f}")
>>> _q3_tiny_run()
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
