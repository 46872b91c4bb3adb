"""Tests for tinygrad_rep.nn: registration, names, state dicts, hooks, layers, init, gradients."""

import re

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import nn
from tinygrad_rep.tensor import Tensor


class Block(nn.Module):
    """A custom module: a parameter, a plain attribute, a sub-module, a buffer, a frozen tensor."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.note = "not registered"
        self.constant = Tensor(np.zeros(3))           # no requires_grad: not a parameter
        self.inner = nn.Linear(3, 2, rng=0)
        self.offset = Tensor(np.zeros(2, dtype=np.float32), requires_grad=True)
        self.register_buffer("count", np.array([0], dtype=np.int64))

    def forward(self, x):
        return self.inner(x * self.scale) + self.offset


def mlp(dtype=np.float32, act=None):
    return nn.Sequential(nn.Linear(4, 8, rng=1, dtype=dtype), act or nn.ReLU(),
                         nn.Linear(8, 3, rng=2, dtype=dtype))


# ---------------------------------------------------------------- registration and names

def test_registration_order_and_names():
    b = Block()
    names = [n for n, _ in b.named_parameters()]
    # a module's own parameters first, then each sub-module's, each in assignment order (as PyTorch)
    assert names == ["scale", "offset", "inner.weight", "inner.bias"]
    assert [p.name for p in b.parameters()] == names
    assert list(b._modules) == ["inner"]
    assert b.note == "not registered" and b.constant.requires_grad is False
    assert [n for n, _ in b.named_buffers()] == ["count"]


def test_nested_dotted_names_set_on_tensors():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 3, rng=0), nn.Tanh()), nn.Linear(3, 1, rng=1))
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]
    assert model[0][0].weight.name == "0.0.weight"
    assert model[1].bias.name == "1.bias"

    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(4, 2, rng=0), nn.ReLU())
            self.decoder = nn.Sequential(nn.Linear(2, 4, rng=1))

        def forward(self, x):
            return self.decoder(self.encoder(x))

    ae = AE()
    list(ae.parameters())
    assert ae.encoder[0].weight.name == "encoder.0.weight"
    assert ae.decoder[0].bias.name == "decoder.0.bias"


def test_parameters_are_named_as_the_tree_is_built():
    # no named_parameters() call: registration alone names every parameter by its dotted path
    model = nn.Sequential(nn.Linear(4, 3, rng=0), nn.ReLU(), nn.Linear(3, 2, rng=1))
    assert [model[0].weight.name, model[0].bias.name, model[2].weight.name] == ["0.weight", "0.bias", "2.weight"]

    class AE(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(nn.Linear(4, 2, rng=0), nn.ReLU())
            self.decoder = nn.Sequential(nn.Linear(2, 4, rng=1))

    ae = AE()
    assert ae.encoder[0].weight.name == "encoder.0.weight" and ae.decoder[0].bias.name == "decoder.0.bias"
    # a module reused in a second tree (a probe on the encoder, a slice) keeps the names it has
    probe = nn.Sequential(ae.encoder, nn.Linear(2, 3, rng=2))
    list(probe.parameters())
    assert ae.encoder[0].weight.name == "encoder.0.weight" and probe[1].weight.name == "1.weight"
    assert model[:2][0].weight.name == "0.weight"
    # a parameter assigned after its module joined a tree gets its full name when listed
    model[2].weight = nn.Parameter(np.zeros((3, 2), dtype=np.float32))
    assert model[2].weight.name == "weight"
    list(model.parameters())
    assert model[2].weight.name == "2.weight"
    ae.encoder.extra = nn.Linear(2, 2, rng=3)  # a layer added to a tree after it was built
    assert ae.encoder.extra.weight.name == "extra.weight"
    list(ae.parameters())
    assert ae.encoder.extra.weight.name == "encoder.extra.weight"
    assert ae.encoder[0].weight.name == "encoder.0.weight"  # listing the probe did not rename it


def test_a_name_set_by_the_user_is_kept():
    lin = nn.Linear(3, 2, rng=0)
    lin.weight.name = "W1"
    model = nn.Sequential(lin, nn.ReLU())
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert lin.weight.name == "W1" and lin.bias.name == "0.bias"


def test_load_state_dict_gives_parameters_a_new_version():
    # load_state_dict writes in place: a graph that saved the old weight must refuse to backward
    model = nn.Sequential(nn.Linear(3, 2, rng=0, dtype=np.float64))
    before = model[0].weight._version
    y = model(Tensor(np.ones((1, 3)), requires_grad=True))
    model.load_state_dict(nn.Sequential(nn.Linear(3, 2, rng=1, dtype=np.float64)).state_dict())
    assert model[0].weight._version == before + 1 and model[0].bias._version == before + 1
    with pytest.raises(RuntimeError, match=r"MatMul: input 1 '0\.weight' \(shape \(3, 2\)\) was modified in place"):
        y.sum().backward()


def test_conv_layer_is_part_of_nn():
    conv = nn.Conv2d(1, 2, kernel_size=2, rng=0, dtype=np.float64)
    assert nn.Conv2d is tr.nn.conv.Conv2d and [n for n, _ in conv.named_parameters()] == ["weight", "bias"]
    x = np.arange(9.0).reshape(1, 3, 3, 1)
    w = conv.weight.data  # rows ordered (p, q, c)
    want = np.array([[[x[0, i:i + 2, j:j + 2, 0].reshape(-1) @ w[:, o] for o in range(2)]
                      for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(conv(Tensor(x)).data[0], want, rtol=1e-12)


def test_shared_parameter_listed_once():
    lin = nn.Linear(3, 3, rng=0)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert model.num_parameters() == 12
    assert len(list(model.modules())) == 3  # Sequential, Linear (once), ReLU


def test_reassign_and_delete_update_registry():
    b = Block()
    b.offset = None
    assert "offset" not in dict(b.named_parameters())
    b.inner = nn.Identity()
    assert [n for n, _ in b.named_parameters()] == ["scale"]
    del b.scale
    assert list(b.parameters()) == []


def test_non_leaf_tensor_refused():
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            w = Tensor(np.ones(2), requires_grad=True)
            self.w = w * 2

    with pytest.raises(ValueError, match=r"Bad\.w: a parameter must be a leaf tensor"):
        Bad()


def test_missing_super_init_is_explained():
    class NoInit(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(2))

    with pytest.raises(AttributeError, match=r"NoInit: call super\(\)\.__init__\(\) before assigning attribute 'w'"):
        NoInit()


def test_sequential_indexing():
    model = mlp()
    assert len(model) == 3
    assert isinstance(model[1], nn.ReLU) and model[-1] is model[2]
    head = model[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is model[0]
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    x = Tensor(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    np.testing.assert_allclose(model(x).data, model[2](model[1](model[0](x))).data)
    with pytest.raises(TypeError, match="Sequential: argument 1 is a int, not a Module"):
        nn.Sequential(nn.ReLU(), 3)


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2, rng=i) for i in range(3)])
    assert len(layers) == 3 and [n for n, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]


def test_repr_shows_tree():
    text = repr(nn.Sequential(nn.Linear(4, 8, rng=0), nn.Softmax(axis=1)))
    assert text == ("Sequential(\n"
                    "  (0): Linear(in_features=4, out_features=8, bias=True)\n"
                    "  (1): Softmax(axis=1)\n"
                    ")")


# ---------------------------------------------------------------- training helpers

def test_zero_grad():
    model = mlp()
    x = Tensor(np.ones((2, 4), dtype=np.float32))
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_train_eval_recursive():
    model = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Sequential(nn.Dropout(0.5, rng=0), nn.ReLU()))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_requires_grad_freezes():
    model = mlp()
    model[0].requires_grad_(False)
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
    assert model.num_parameters(trainable_only=True) == 8 * 3 + 3
    assert model.num_parameters() == 4 * 8 + 8 + 8 * 3 + 3


# ---------------------------------------------------------------- state dicts

def test_state_dict_is_ordered_copy():
    b = Block()
    sd = b.state_dict()
    assert list(sd) == ["scale", "offset", "count", "inner.weight", "inner.bias"]
    assert all(isinstance(v, np.ndarray) for v in sd.values())
    sd["scale"][:] = 7
    assert np.all(b.scale.data == 1)


def test_load_state_dict_round_trip_in_place_and_casts():
    a, b = mlp(), mlp()
    b[0].weight.data[:] = 0
    w_array = b[0].weight.data
    sd = {k: v.astype(np.float64) for k, v in a.state_dict().items()}
    b.load_state_dict(sd)
    assert b[0].weight.data is w_array  # same array: optimizers holding it see the new values
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert vb.dtype == np.float32
        np.testing.assert_array_equal(va, vb)


def test_load_state_dict_accepts_tensors_and_buffers():
    a, b = Block(), Block()
    a.count[0] = 5
    a.scale.data[:] = 2
    b.load_state_dict({k: Tensor(v) if k != "count" else v for k, v in a.state_dict().items()})
    assert b.count[0] == 5 and np.all(b.scale.data == 2)


def test_load_state_dict_missing_key_message():
    model = mlp()
    sd = model.state_dict()
    del sd["2.weight"]
    with pytest.raises(KeyError, match=re.escape(
            "load_state_dict: missing key '2.weight' (model shape (8, 3))")) as info:
        model.load_state_dict(sd)
    assert str(info.value) == "load_state_dict: missing key '2.weight' (model shape (8, 3))"


def test_load_state_dict_unexpected_key_message():
    model = mlp()
    sd = model.state_dict()
    sd["3.weight"] = np.zeros((2, 5))
    with pytest.raises(KeyError, match=re.escape(
            "load_state_dict: unexpected key '3.weight' (shape (2, 5)) not in the model")):
        model.load_state_dict(sd)
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert missing == [] and unexpected == ["3.weight"]


def test_load_state_dict_wrong_shape_message_and_no_partial_write():
    model = mlp()
    before = model.state_dict()
    sd = {k: np.full_like(v, 9.0) for k, v in before.items()}
    sd["2.weight"] = np.zeros((3, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=re.escape(
            "load_state_dict: shape mismatch for '2.weight': state dict has shape (3, 8), "
            "model has shape (8, 3)")):
        model.load_state_dict(sd)
    for k, v in model.state_dict().items():  # nothing was written, not even the valid keys
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_non_strict_skips_missing():
    model = mlp()
    sd = model.state_dict()
    keep = sd.pop("0.bias")
    sd["0.weight"] = sd["0.weight"] + 1
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert missing == ["0.bias"] and unexpected == []
    np.testing.assert_array_equal(model[0].bias.data, keep)
    np.testing.assert_array_equal(model[0].weight.data, sd["0.weight"])


# ---------------------------------------------------------------- hooks

def test_forward_hook_replaces_output_and_removes():
    lin = nn.Linear(2, 2, rng=0)
    seen = []

    def record(module, inputs, output):
        seen.append((module, inputs, output.shape))

    def double(module, inputs, output):
        return output * 2

    x = Tensor(np.ones((1, 2), dtype=np.float32))
    plain = lin(x).data.copy()
    h1 = lin.register_forward_hook(record)
    h2 = lin.register_forward_hook(double)
    np.testing.assert_allclose(lin(x).data, 2 * plain)
    assert seen[0][0] is lin and seen[0][1][0] is x and seen[0][2] == (1, 2)
    h2.remove()
    np.testing.assert_allclose(lin(x).data, plain)
    h1.remove()
    h1.remove()  # removing twice is harmless
    lin(x)
    assert len(seen) == 2


def test_forward_hook_gradient_flows_through_replacement():
    lin = nn.Linear(2, 1, rng=0, dtype=np.float64)
    lin.register_forward_hook(lambda m, i, o: o * 3)
    x = Tensor(np.ones((1, 2)))
    lin(x).sum().backward()
    np.testing.assert_allclose(lin.bias.grad.data, [3.0])


def test_forward_pre_hook_replaces_input():
    ident = nn.Identity()
    h = ident.register_forward_pre_hook(lambda m, inputs: inputs[0] + 1)
    assert ident(Tensor(np.zeros(2))).data.tolist() == [1.0, 1.0]
    h.remove()
    assert ident(Tensor(np.zeros(2))).data.tolist() == [0.0, 0.0]


# ---------------------------------------------------------------- layers

def test_linear_forward_is_x_at_w_plus_b():
    lin = nn.Linear(3, 2, rng=0, dtype=np.float64)
    assert lin.weight.shape == (3, 2) and lin.bias.shape == (2,)
    lin.bias.data[:] = [0.5, -1.0]
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(lin(Tensor(x)).data, x @ lin.weight.data + lin.bias.data)
    batched = np.arange(12.0).reshape(2, 2, 3)
    assert lin(Tensor(batched)).shape == (2, 2, 2)
    assert nn.Linear(3, 2, bias=False).bias is None
    with pytest.raises(ValueError, match=r"Linear\(in_features=3\): input of shape \(2, 4\) must have 3"):
        lin(Tensor(np.zeros((2, 4))))


def test_linear_kaiming_bounds_and_variance():
    fan_in, fan_out = 256, 512
    w = nn.Linear(fan_in, fan_out, rng=0).weight.data
    assert w.dtype == np.float32
    assert np.all(np.abs(w) <= np.sqrt(6 / fan_in))
    assert np.abs(w).max() > 0.99 * np.sqrt(6 / fan_in)  # the whole range is used
    assert abs(w.var() / (2 / fan_in) - 1) < 0.02
    assert abs(w.mean()) < 0.01


def test_linear_xavier_bounds_and_variance():
    fan_in, fan_out = 300, 200
    lin = nn.Linear(fan_in, fan_out, init="xavier", rng=0)
    w = lin.weight.data
    assert np.all(np.abs(w) <= np.sqrt(6 / (fan_in + fan_out)))
    assert abs(w.var() / (2 / (fan_in + fan_out)) - 1) < 0.02
    assert np.all(lin.bias.data == 0)


def test_linear_seeding():
    a = nn.Linear(5, 4, rng=3).weight.data
    assert np.array_equal(a, nn.Linear(5, 4, seed=3).weight.data)
    assert np.array_equal(a, nn.Linear(5, 4, rng=np.random.default_rng(3)).weight.data)
    assert not np.array_equal(a, nn.Linear(5, 4, rng=4).weight.data)
    assert nn.Linear(5, 4, dtype=np.float64).weight.dtype == np.float64
    with pytest.raises(ValueError, match="init must be 'kaiming' or 'xavier', got 'he'"):
        nn.Linear(2, 2, init="he")


def test_embedding_lookup_and_gradient():
    emb = nn.Embedding(10, 4, rng=0, dtype=np.float64)
    assert emb.weight.shape == (10, 4)
    assert abs(emb.weight.data.std() - 1) < 0.5  # N(0, 1)
    idx = np.array([[1, 3], [1, 9]])
    out = emb(idx)
    assert out.shape == (2, 2, 4)
    np.testing.assert_array_equal(out.data, emb.weight.data[idx])
    out.sum().backward()
    counts = np.bincount(idx.ravel(), minlength=10)
    np.testing.assert_array_equal(emb.weight.grad.data, np.repeat(counts[:, None], 4, axis=1))
    u = nn.Embedding(50, 8, init="uniform", rng=0).weight.data
    assert np.all(np.abs(u) <= 0.5 / 8)
    assert np.all(nn.Embedding(3, 2, init="zeros").weight.data == 0)


def test_activation_modules():
    x = Tensor(np.array([[-1.0, 0.5, 2.0]]))
    np.testing.assert_allclose(nn.ReLU()(x).data, [[0.0, 0.5, 2.0]])
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-x.data)))
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(x.data))
    e = np.exp(x.data - x.data.max())
    np.testing.assert_allclose(nn.Softmax()(x).data, e / e.sum())
    np.testing.assert_allclose(nn.LogSoftmax(axis=1)(x).data, np.log(e / e.sum()))
    assert nn.Identity()(x) is x
    assert nn.Flatten()(Tensor(np.zeros((2, 3, 4)))).shape == (2, 12)
    assert nn.Flatten(start_axis=0)(Tensor(np.zeros((2, 3)))).shape == (6,)


def test_dropout_train_and_eval():
    d = nn.Dropout(0.25, rng=0)
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    y = d(x)
    kept = y.data != 0
    assert abs(kept.mean() - 0.75) < 0.02
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, kept / 0.75)  # same mask, same scale
    d.eval()
    assert d(x) is x
    with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


# ---------------------------------------------------------------- gradients

@pytest.mark.parametrize("act", [nn.ReLU, nn.Tanh])
def test_gradcheck_sequential_loss(act):
    rng = np.random.default_rng(0)
    model = mlp(dtype=np.float64, act=act())
    names = [n for n, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    x = Tensor(rng.standard_normal((5, 4)), requires_grad=True)
    target = Tensor(rng.standard_normal((5, 3)))

    def loss(x, *ps):
        return tr.functional.mse_loss(nn.functional_call(model, dict(zip(names, ps)), x), target)

    assert tr.gradcheck(loss, [x] + params)
    # functional_call put the real parameters back
    assert model[0].weight is params[0] and model[2].weight is params[2]


def test_functional_call_unknown_name():
    with pytest.raises(KeyError, match="the module has no parameter 'nope'"):
        nn.functional_call(mlp(), {"nope": Tensor(np.zeros(1))}, Tensor(np.zeros((1, 4))))


def test_package_keeps_every_public_name():
    # nn was one module (and conv a module beside it); every name it offered is still tr.nn.<name>
    names = ["Parameter", "Module", "Linear", "Embedding", "Sequential", "ModuleList", "ReLU", "Sigmoid",
             "Tanh", "Softmax", "LogSoftmax", "Identity", "Flatten", "Dropout", "kaiming_uniform",
             "xavier_uniform", "functional_call", "StateDictError", "Conv2d", "conv2d"]
    assert sorted(tr.nn.__all__) == sorted(names)
    from tinygrad_rep.nn import conv, init, layers, module
    for name in names:
        owner = next(m for m in (module, layers, conv, init) if name in getattr(m, "__all__", ()))
        assert getattr(tr.nn, name) is getattr(owner, name)
