"""Wrong submissions (group ``wrong``): ONE realistic mistake each, in the reference solution.

Each case states the question that must lose points (``"loses"``; the others stay ``"full"``)
and the diagnosis its feedback must give. The mistakes are written as small edits of the
reference's own definitions (see :mod:`edits`), so each case differs from a correct notebook by
its mistake only. ``casebook.py`` writes them to ``wrong/``.
"""

from __future__ import annotations

from casebook import Case
from edits import adaline1_with_backward, edit

PUBLISHED = [0.38849, 0.31679, 0.26379, 0.22463, 0.19527, 0.17307, 0.15629, 0.14352, 0.13360,
             0.12600, 0.12007, 0.11547, 0.11178, 0.10884, 0.10656, 0.10470, 0.10320, 0.10200,
             0.10105, 0.10025]

BACKWARD_RETURN = "        return (-1) * grad_loss_weights, (-1) * grad_loss_bias\n"
GRAD_LINES = ("            negative_grad_w = grad(loss, model.weight, retain_graph=True)[0] * (-1)\n"
              "            negative_grad_b = grad(loss, model.bias)[0] * (-1)\n")
UPDATE_LINES = ("            model.weight = model.weight + learning_rate * negative_grad_w\n"
                "            model.bias = model.bias + learning_rate * negative_grad_b\n")
ZERO_INIT_LINES = ("        self.linear.weight.detach().zero_()\n"
                   "        self.linear.bias.detach().zero_()\n")
ZERO_GRAD_LINE = "            optimizer.zero_grad()  # reset the gradients of the previous step\n"
STEP_LINE = "            optimizer.step()  # parameter -= lr * parameter.grad, for weight and bias\n"
HAND_UPDATE_LINES = ("            with torch.no_grad():\n"
                     "                for p in model.parameters():\n"
                     "                    p -= learning_rate * p.grad\n")
SPLIT_LINE = "        for batch in torch.split(order, minibatch_size):\n"


def wrong(name: str, question: str, diagnosis: str, description: str, **fields) -> Case:
    expect = {q: ("loses" if q == question else "full") for q in ("q1", "q2", "q3")}
    return Case(name=name, group="wrong", description=description, expect=expect,
                diagnosis={question: diagnosis}, **fields)


CASES = [
    # --- q1: the hand-written backward ------------------------------------------------------
    wrong("q1_sign_flipped", "q1", "sign_flipped",
          "backward returns the gradients, not the negative gradients (the (-1) is missing).",
          replace=edit("Adaline1", (BACKWARD_RETURN,
                                    "        return grad_loss_weights, grad_loss_bias\n"))),
    wrong("q1_sum_not_mean", "q1", "sum_not_mean",
          "backward sums over the minibatch instead of averaging (no division by n).",
          replace=edit("Adaline1",
                       ("grad_loss_yhat.view(-1, 1)) / y.size(0)", "grad_loss_yhat.view(-1, 1))"),
                       (".view(1) / y.size(0)", ".view(1)"))),
    wrong("q1_missing_factor_2", "q1", "missing_factor_2",
          "backward uses dL/dyhat = yhat - y, without the factor 2 of the square.",
          replace=edit("Adaline1", ("grad_loss_yhat = 2 * (yhat - y)",
                                    "grad_loss_yhat = (yhat - y)"))),
    wrong("q1_bias_not_reduced", "q1", "bias_not_reduced",
          "The bias gradient is not summed over the batch: one value per sample, shape (n,).",
          replace=edit("Adaline1", (
              "grad_loss_bias = torch.sum(grad_yhat_bias * grad_loss_yhat).view(1) / y.size(0)",
              "grad_loss_bias = grad_yhat_bias * grad_loss_yhat / y.size(0)"))),
    wrong("q1_weight_transposed", "q1", "weight_transposed",
          "The weight gradient is computed as (1, n) @ (n, m), giving shape (1, m) instead of "
          "(m, 1).",
          replace=edit("Adaline1", (
              "torch.mm(grad_yhat_weights.t(),\n"
              "                                     grad_loss_yhat.view(-1, 1))",
              "torch.mm(grad_loss_yhat.view(1, -1),\n"
              "                                     grad_yhat_weights)"))),
    wrong("q1_uses_autograd", "q1", "uses_autograd",
          "backward lets autograd compute dL/dyhat (torch.autograd.grad on a copy of yhat) "
          "instead of the hand-derived 2 (yhat - y) / n; the values are right.",
          replace=adaline1_with_backward('''
              yhat_leaf = yhat.detach().clone().requires_grad_(True)
              loss = torch.mean((yhat_leaf - y) ** 2)
              (grad_loss_yhat,) = torch.autograd.grad(loss, yhat_leaf)
              return (-x.t() @ grad_loss_yhat.view(-1, 1)), -grad_loss_yhat.sum().view(1)
          ''')),
    wrong("q1_missing_two_over_n", "q1", "missing_two_over_n",
          "backward drops the 2/n of dL/dyhat = (2/n) (yhat - y): it returns X^T (y - yhat).",
          replace=adaline1_with_backward('''
              error = (yhat - y).view(-1, 1)
              return -torch.mm(x.t(), error), -error.sum().view(1)
          ''')),
    wrong("q1_wrong_n", "q1", "wrong_n",
          "backward takes n = x.size(1), the number of features, instead of the number of "
          "samples.",
          replace=edit("Adaline1",
                       ("grad_loss_yhat.view(-1, 1)) / y.size(0)", "grad_loss_yhat.view(-1, 1)) / x.size(1)"),
                       (".view(1) / y.size(0)", ".view(1) / x.size(1)"))),
    wrong("q1_integer_labels", "q1", "integer_labels",
          "backward expands X^T (yhat - y) into X^T yhat - X^T y: torch.mm of the float x with "
          "the lecture's integer labels raises a dtype error (torch.mm does not promote, unlike "
          "the subtraction yhat - y).",
          replace=edit("Adaline1", (
              "torch.mm(grad_yhat_weights.t(),\n"
              "                                     grad_loss_yhat.view(-1, 1))",
              "2 * (torch.mm(x.t(), yhat.view(-1, 1))\n"
              "                                     - torch.mm(x.t(), y.view(-1, 1)))"))),
    # --- q2: train_autograd ------------------------------------------------------------------
    wrong("q2_backward_not_grad", "q2", "uses_backward_not_grad",
          "train_autograd calls loss.backward() and reads .grad instead of torch.autograd.grad.",
          replace=edit("train_autograd", (
              GRAD_LINES + UPDATE_LINES,
              "            loss.backward()\n"
              "            with torch.no_grad():\n"
              "                model.weight -= learning_rate * model.weight.grad\n"
              "                model.bias -= learning_rate * model.bias.grad\n"
              "            model.weight.grad.zero_()\n"
              "            model.bias.grad.zero_()\n"))),
    wrong("q2_ascending", "q2", "ascending",
          "The update subtracts the negative gradient: the parameters move up the gradient.",
          replace=edit("train_autograd", (UPDATE_LINES, UPDATE_LINES.replace(" + ", " - ")))),
    wrong("q2_learning_rate_ignored", "q2", "learning_rate_ignored",
          "The update uses a hard-coded 0.01 instead of the learning_rate argument.",
          replace=edit("train_autograd", (UPDATE_LINES,
                                          UPDATE_LINES.replace("learning_rate *", "0.01 *")))),
    wrong("q2_seed_each_epoch", "q2", "seed_reset_each_epoch",
          "torch.manual_seed(seed) is called at the start of every epoch, so every epoch "
          "shuffles alike.",
          replace=edit("train_autograd",
                       ("    torch.manual_seed(seed)\n    for epoch in range(num_epochs):\n",
                        "    for epoch in range(num_epochs):\n        torch.manual_seed(seed)\n"))),
    wrong("q2_seed_ignored", "q2", "seed_ignored",
          "torch.manual_seed(123) instead of the seed argument.",
          replace=edit("train_autograd", ("torch.manual_seed(seed)", "torch.manual_seed(123)"))),
    wrong("q2_num_epochs_ignored", "q2", "num_epochs_ignored",
          "The epoch loop runs the lecture's 20 epochs whatever num_epochs says.",
          replace=edit("train_autograd", ("range(num_epochs)", "range(20)"))),
    wrong("q2_losses_per_minibatch", "q2", "losses_per_minibatch",
          "The cost list gets the loss of every minibatch instead of one full-data loss per "
          "epoch.",
          replace=edit("train_autograd",
                       (UPDATE_LINES, UPDATE_LINES + "            cost.append(loss.detach())\n"),
                       ("        cost.append(curr_loss)\n", ""))),
    wrong("q2_update_discarded", "q2", "params_never_change",
          "The updated parameters go to local variables (weight = ...), never to model.weight "
          "and model.bias.",
          replace=edit("train_autograd", (UPDATE_LINES,
                                          UPDATE_LINES.replace("model.weight = ", "weight = ")
                                          .replace("model.bias = ", "bias = ")))),
    wrong("q2_hardcoded_curve", "q2", "hardcoded_curve",
          "train_autograd trains, then returns the lecture's published losses (hard-coded).",
          replace=edit("train_autograd", ("    return cost\n",
                                          f"    return {PUBLISHED!r}\n"))),
    wrong("q2_seed_missing", "q2", "seed_missing",
          "train_autograd never calls torch.manual_seed(seed): its shuffles depend on what "
          "ran before.",
          replace=edit("train_autograd", ("    torch.manual_seed(seed)\n", ""))),
    wrong("q2_dataloader_shuffle", "q2", "dataloader_shuffle",
          "train_autograd takes its minibatches from a DataLoader(..., shuffle=True), which "
          "draws its own order.",
          replace=edit("train_autograd", (
              "        shuffle_idx = torch.randperm(y.size(0), dtype=torch.long)\n"
              "        for minibatch_idx in torch.split(shuffle_idx, minibatch_size):\n",
              "        loader = torch.utils.data.DataLoader(torch.arange(y.size(0)),\n"
              "                                             batch_size=minibatch_size, shuffle=True)\n"
              "        for minibatch_idx in loader:\n"))),
    wrong("q2_last_minibatch_loss", "q2", "last_minibatch_loss",
          "train_autograd logs the loss of each epoch's last minibatch (computed before its "
          "update) instead of the loss on all of (x, y) after the epoch.",
          replace=edit("train_autograd", (
              "        with torch.no_grad():  # logging only: no graph needed\n"
              "            curr_loss = loss_func(model.forward(x), y)\n",
              "        curr_loss = loss.detach()  # the last minibatch's loss\n"))),
    # --- q3: Adaline3 and train_nn -------------------------------------------------------------
    wrong("q3_last_minibatch_loss", "q3", "last_minibatch_loss",
          "train_nn logs loss.item() of each epoch's last minibatch instead of the loss on all "
          "of (x, y) after the epoch.",
          replace=edit("train_nn", (
              "        with torch.no_grad():  # measuring, not training: no graph\n"
              "            curr_loss = F.mse_loss(model(x), y.float())\n",
              "        curr_loss = loss.item()  # the last minibatch's loss\n"))),
    wrong("q3_momentum", "q3", "momentum",
          "train_nn's SGD uses momentum=0.9.",
          replace=edit("train_nn", ("torch.optim.SGD(model.parameters(), lr=learning_rate)",
                                    "torch.optim.SGD(model.parameters(), lr=learning_rate, "
                                    "momentum=0.9)"))),
    wrong("q3_learning_rate_ignored", "q3", "learning_rate_ignored",
          "train_nn's SGD uses a hard-coded lr=0.01 instead of the learning_rate argument "
          "(a bug the other-data run shows; the optimizer is still SGD, so no method rule).",
          replace=edit("train_nn", ("torch.optim.SGD(model.parameters(), lr=learning_rate)",
                                    "torch.optim.SGD(model.parameters(), lr=0.01)"))),
    wrong("q3_no_zero_grad", "q3", "gradients_accumulate",
          "optimizer.zero_grad() is missing: the gradients accumulate across steps.",
          replace=edit("train_nn", (ZERO_GRAD_LINE, ""))),
    wrong("q3_zero_grad_between", "q3", "params_never_change",
          "optimizer.zero_grad() between loss.backward() and optimizer.step(): every step "
          "applies a zero gradient.",
          replace=edit("train_nn", (
              ZERO_GRAD_LINE + "            loss.backward()  # new gradients into each parameter's .grad\n",
              "            loss.backward()  # new gradients into each parameter's .grad\n"
              + ZERO_GRAD_LINE))),
    wrong("q3_hand_update", "q3", "sgd_not_used",
          "train_nn creates an SGD but never calls optimizer.step(): it updates the parameters "
          "by hand (p -= learning_rate * p.grad under torch.no_grad()), which gives the same "
          "losses.",
          replace=edit("train_nn", (STEP_LINE, HAND_UPDATE_LINES))),
    wrong("q3_dataloader_no_shuffle", "q3", "dataloader_shuffle",
          "train_nn shuffles with torch.randperm but cuts the minibatches with a "
          "DataLoader(order, shuffle=False): iterating it draws from torch's global generator, "
          "so the next epoch's torch.randperm differs from the lecture's.",
          replace=edit("train_nn", (SPLIT_LINE, SPLIT_LINE.replace(
              "torch.split(order, minibatch_size)",
              "torch.utils.data.DataLoader(order, batch_size=minibatch_size, shuffle=False)")))),
    wrong("q3_random_init", "q3", "random_init",
          "Adaline3 keeps nn.Linear's random initial weight and bias (the zeroing is missing).",
          replace=edit("Adaline3", (ZERO_INIT_LINES, ""))),
    wrong("q3_adam", "q3", "other_optimizer",
          "train_nn uses torch.optim.Adam instead of SGD.",
          replace=edit("train_nn", ("torch.optim.SGD(", "torch.optim.Adam("))),
    wrong("q3_output_n1", "q3", "output_shape_n1",
          "forward returns the (n, 1) net inputs; F.mse_loss broadcasts them against the (n,) "
          "targets to (n, n).",
          replace=edit("Adaline3", ("return self.linear(x).view(-1)", "return self.linear(x)"))),
    wrong("q3_full_batch", "q3", "full_batch",
          "One update per epoch on all the data instead of one per minibatch.",
          replace=edit("train_nn", ("torch.split(order, minibatch_size)", "[order]"))),
    wrong("q3_minibatch_size_ignored", "q3", "minibatch_size_ignored",
          "Minibatches of a hard-coded 10 instead of minibatch_size.",
          replace=edit("train_nn", ("torch.split(order, minibatch_size)",
                                    "torch.split(order, 10)"))),
    wrong("q3_thresholded_output", "q3", "loss_detached",
          "Perceptron-style: forward returns thresholded class labels as an int tensor, so the "
          "loss of these integer predictions is detached from the parameters and "
          "loss.backward() fails.",
          replace=edit("Adaline3", ("return self.linear(x).view(-1)",
                                    "return (self.linear(x).view(-1) > 0.5).int()"))),
    # --- every question -----------------------------------------------------------------------
    Case("stub_untouched", "wrong",
         "The student notebook submitted as handed out: every part still raises "
         "NotImplementedError.",
         expect={"q1": "zero", "q2": "zero", "q3": "zero"},
         diagnosis={"q1": "stub_untouched", "q2": "stub_untouched", "q3": "stub_untouched"},
         base="student"),
]
