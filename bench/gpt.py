"""One training step's forward pass and loss of microgpt, the scalar GPT that the seed comes from.

The architecture is microgpt's: token and position embeddings, rmsnorm, causal multi-head attention
with softmax, an MLP with relu, the lm_head, softmax and the mean of -log p(next token). Numbers are
whatever `leaf` makes of a float (a Traced number here), so the same code builds the Value graph.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int = 27
    n_embd: int = 16
    n_head: int = 4
    n_layer: int = 1
    block_size: int = 16


def init_params(config, rng, leaf):
    """microgpt's state dict: every weight a leaf drawn from N(0, 0.08)."""

    def matrix(n_out, n_in, std=0.08):
        return [[leaf(rng.gauss(0, std)) for _ in range(n_in)] for _ in range(n_out)]

    e = config.n_embd
    params = {
        "wte": matrix(config.vocab_size, e),
        "wpe": matrix(config.block_size, e),
        "lm_head": matrix(config.vocab_size, e),
    }
    for i in range(config.n_layer):
        for name in ("attn_wq", "attn_wk", "attn_wv", "attn_wo"):
            params[f"layer{i}.{name}"] = matrix(e, e)
        params[f"layer{i}.mlp_fc1"] = matrix(4 * e, e)
        params[f"layer{i}.mlp_fc2"] = matrix(e, 4 * e)
    return params


def linear(x, w):
    return [sum(wi * xi for wi, xi in zip(row, x)) for row in w]


def softmax(logits):
    max_val = max(val.data for val in logits)
    exps = [(val - max_val).exp() for val in logits]
    total = sum(exps)
    return [e / total for e in exps]


def rmsnorm(x):
    ms = sum(xi * xi for xi in x) / len(x)
    scale = (ms + 1e-5) ** -0.5
    return [xi * scale for xi in x]


def gpt(config, params, token_id, pos_id, keys, values):
    """The logits for the next token, with this position's keys and values appended to the caches."""
    head_dim = config.n_embd // config.n_head
    x = [t + p for t, p in zip(params["wte"][token_id], params["wpe"][pos_id])]
    x = rmsnorm(x)
    for li in range(config.n_layer):
        x_residual = x
        x = rmsnorm(x)
        q = linear(x, params[f"layer{li}.attn_wq"])
        keys[li].append(linear(x, params[f"layer{li}.attn_wk"]))
        values[li].append(linear(x, params[f"layer{li}.attn_wv"]))
        x_attn = []
        for h in range(config.n_head):
            hs = h * head_dim
            q_h = q[hs : hs + head_dim]
            k_h = [k[hs : hs + head_dim] for k in keys[li]]
            v_h = [v[hs : hs + head_dim] for v in values[li]]
            attn_logits = [sum(q_h[j] * k_t[j] for j in range(head_dim)) / head_dim**0.5 for k_t in k_h]
            attn_weights = softmax(attn_logits)
            x_attn.extend(sum(attn_weights[t] * v_h[t][j] for t in range(len(v_h))) for j in range(head_dim))
        x = linear(x_attn, params[f"layer{li}.attn_wo"])
        x = [a + b for a, b in zip(x, x_residual)]
        x_residual = x
        x = rmsnorm(x)
        x = [xi.relu() for xi in linear(x, params[f"layer{li}.mlp_fc1"])]
        x = linear(x, params[f"layer{li}.mlp_fc2"])
        x = [a + b for a, b in zip(x, x_residual)]
    return linear(x, params["lm_head"])


def training_loss(config, rng, leaf):
    """The loss of one step over block_size positions of a random document: BOS, letters, BOS."""
    params = init_params(config, rng, leaf)
    bos = config.vocab_size - 1
    tokens = [bos] + [rng.randrange(config.vocab_size - 1) for _ in range(config.block_size - 1)] + [bos]
    keys, values = [[] for _ in range(config.n_layer)], [[] for _ in range(config.n_layer)]
    losses = []
    for pos_id in range(config.block_size):
        logits = gpt(config, params, tokens[pos_id], pos_id, keys, values)
        probs = softmax(logits)
        losses.append(-probs[tokens[pos_id + 1]].log())
    return (1 / config.block_size) * sum(losses)
