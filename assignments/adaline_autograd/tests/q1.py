OK_FORMAT = True

test = {
    "name": "q1",
    "points": None,
    "suites": [
        {
            "cases": [
                {
                    "name": "q1 - backward returns a pair with the right shapes",
                    "code": r"""
>>> def _q1_shapes():
...     import torch
...     x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
...     result = Adaline1(2).backward(x, torch.zeros(2), torch.tensor([0.0, 1.0]))
...     assert isinstance(result, (tuple, list)) and len(result) == 2, (
...         f"backward should return a pair (negative_grad_w, negative_grad_b), got {result!r}")
...     grad_w, grad_b = result
...     assert isinstance(grad_w, torch.Tensor) and isinstance(grad_b, torch.Tensor), (
...         "both negative gradients should be tensors")
...     assert tuple(grad_w.shape) == (2, 1), (
...         f"negative_grad_w should have shape (num_features, 1) = (2, 1) like model.weight, "
...         f"got {tuple(grad_w.shape)}")
...     assert tuple(grad_b.shape) == (1,), (
...         f"negative_grad_b should have shape (1,) like model.bias, got {tuple(grad_b.shape)} "
...         "(a sum over the examples gives shape (); .view(1) makes it (1,))")
...     assert grad_w.dtype == torch.float32 and grad_b.dtype == torch.float32, (
...         f"the negative gradients should be float32, got {grad_w.dtype} and {grad_b.dtype}")
>>> _q1_shapes()
""",
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": "q1 - negative gradients on a 2x2 example",
                    "code": r"""
>>> def _q1_values():
...     import torch
...     # Two examples, two features, outputs 0 (zero weights), labels 0 and 1. By hand:
...     # dL/dyhat = 2/n (yhat - y) = [0, -1]; -dL/dw = -X^T [0, -1] = [[3], [4]]; -dL/db = 1.
...     x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
...     grad_w, grad_b = Adaline1(2).backward(x, torch.zeros(2), torch.tensor([0.0, 1.0]))
...     got = grad_w.detach().reshape(-1).tolist()
...     expected = [3.0, 4.0]
...     hint = ""
...     if torch.allclose(torch.tensor(got), -torch.tensor(expected)):
...         hint = " (the sign is flipped: return the NEGATIVE gradient)"
...     elif torch.allclose(torch.tensor(got), 2 * torch.tensor(expected)):
...         hint = " (twice too large: did you divide by n, the number of examples?)"
...     elif torch.allclose(torch.tensor(got), 0.5 * torch.tensor(expected)):
...         hint = " (half as large: the derivative of the square brings a factor 2)"
...     assert torch.allclose(torch.tensor(got), torch.tensor(expected), atol=1e-5), (
...         f"negative_grad_w should be [[3.0], [4.0]] for x = [[1, 2], [3, 4]], yhat = [0, 0], "
...         f"y = [0, 1], got {got}{hint}")
...     got_b = grad_b.detach().reshape(-1).tolist()
...     assert torch.allclose(torch.tensor(got_b), torch.tensor([1.0]), atol=1e-5), (
...         f"negative_grad_b should be [1.0] for this example (-2/n * sum(yhat - y)), got {got_b}")
>>> _q1_values()
""",
                    "hidden": False,
                    "locked": False,
                },
                {
                    "name": "q1 - one epoch of train_manual on a tiny data set",
                    "code": r"""
>>> def _q1_tiny_run():
...     import contextlib, io, torch
...     x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
...     y = torch.tensor([0, 1], dtype=torch.int)  # int labels, like y_train
...     model = Adaline1(2)
...     with contextlib.redirect_stdout(io.StringIO()):
...         costs = train_manual(model, x, y, num_epochs=1, learning_rate=0.1, seed=0,
...                              minibatch_size=2)
...     # One full-batch step from zero: w = 0.1 * [3, 4], b = 0.1 * 1, so yhat = [1.2, 2.6]
...     # and the MSE is (1.2**2 + 1.6**2) / 2 = 2.0.
...     assert tuple(model.bias.shape) == (1,), (
...         f"model.bias changed shape to {tuple(model.bias.shape)} during training")
...     assert abs(float(costs[0]) - 2.0) < 1e-4, (
...         f"after one full-batch epoch (learning rate 0.1) the MSE should be 2.0, "
...         f"got {float(costs[0]):.5f}")
>>> _q1_tiny_run()
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
