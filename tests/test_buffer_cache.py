"""The gradient buffer cache (lucid/_buffers.py, lucid/_ext/buffer_cache.h).

Checked: which arrays come from it, that a freed block's memory (its address)
is handed to the next array of exactly its size and to no other, the limit and
its eviction order, ``empty_cache``, errors, several threads at once, and
that gradients made in reused (dirty) memory are right, through the tape.
"""
import threading

import numpy as np
import pytest

import lucid
from lucid._ext import _cache
from lucid.nn.functional import distillation_loss, kl_div

from conftest import run_python

try:
    from numpy._core.multiarray import get_handler_name
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import get_handler_name

MIB = 1 << 20
BLOCK = 16 * MIB  # the smallest size the cache takes
SHAPE = (BLOCK // 4,)  # float32 of exactly BLOCK bytes


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty cache at the default limit, and leaves it so."""
    lucid.empty_cache()
    old = lucid.set_cache_limit(2 << 30)
    yield
    lucid.set_cache_limit(old)
    lucid.empty_cache()


def address(a):
    return a.__array_interface__["data"][0]


def test_minimum():
    # The default limit is checked in a child process below (the fixture sets it here).
    assert _cache.MIN_BYTES == BLOCK == lucid._buffers.MIN_BYTES


def test_large_arrays_use_the_handler_small_ones_do_not():
    big = _cache.empty(SHAPE, np.float32)
    small = _cache.empty((SHAPE[0] - 1,), np.float32)
    assert get_handler_name(big) == "lucid_buffer_cache"
    assert get_handler_name(small) != "lucid_buffer_cache"
    assert big.base is None and big.flags.owndata and big.flags.writeable
    assert big.flags.c_contiguous and big.shape == SHAPE and big.dtype == np.float32
    # The handler was numpy's current one only inside empty().
    assert get_handler_name() != "lucid_buffer_cache"
    assert get_handler_name(np.empty(SHAPE, np.float32)) != "lucid_buffer_cache"


def test_a_freed_block_goes_to_the_next_array_of_its_size():
    a = _cache.empty((2048, 2048), np.float32)
    where = address(a)
    reused = lucid.cache_info().reused
    del a
    info = lucid.cache_info()
    assert (info.bytes_held, info.blocks_held) == (BLOCK, 1)
    # The same byte count in another shape and dtype takes it.
    b = _cache.empty((BLOCK // 8,), np.float64)
    assert address(b) == where
    assert lucid.cache_info().reused == reused + 1
    assert lucid.cache_info().bytes_held == 0


def test_a_block_is_never_given_to_another_size_or_to_a_live_array():
    a = _cache.empty(SHAPE, np.float32)
    where = address(a)
    del a
    other = _cache.empty((SHAPE[0] + 16,), np.float32)  # 64 bytes more
    assert address(other) != where
    assert lucid.cache_info().blocks_held == 1
    live = _cache.empty(SHAPE, np.float32)
    second = _cache.empty(SHAPE, np.float32)  # the only block is in use now
    assert address(live) == where and address(second) != where
    live[:] = 1.0
    second[:] = 2.0
    assert live[0] == 1.0 and second[0] == 2.0


def test_a_view_keeps_the_block_in_use():
    a = _cache.empty(SHAPE, np.float32)
    where = address(a)
    view = a[::2]
    del a
    assert lucid.cache_info().blocks_held == 0
    assert address(_cache.empty(SHAPE, np.float32)) != where
    del view


def test_limit_keeps_the_newest_blocks():
    lucid.set_cache_limit(2 * BLOCK)
    arrays = [_cache.empty(SHAPE, np.float32) for _ in range(3)]
    addresses = [address(a) for a in arrays]
    for k in range(3):  # freed in order 0, 1, 2: block 0 leaves for block 2
        arrays[k] = None
    assert lucid.cache_info().bytes_held == 2 * BLOCK
    again = [_cache.empty(SHAPE, np.float32) for _ in range(3)]
    # Newest first; the third is fresh memory.
    assert [address(a) for a in again[:2]] == [addresses[2], addresses[1]]
    assert address(again[2]) not in addresses[1:]


def test_lowering_the_limit_frees_the_oldest_at_once():
    arrays = [_cache.empty(SHAPE, np.float32) for _ in range(3)]
    del arrays
    assert lucid.cache_info().bytes_held == 3 * BLOCK
    assert lucid.set_cache_limit(BLOCK) == 2 << 30
    assert lucid.cache_info().bytes_held == BLOCK
    assert lucid.set_cache_limit(0) == BLOCK
    info = lucid.cache_info()
    assert (info.bytes_held, info.blocks_held, info.limit) == (0, 0, 0)


def test_limit_zero_keeps_nothing_and_blocks_over_the_limit_are_not_kept():
    lucid.set_cache_limit(0)
    a = _cache.empty(SHAPE, np.float32)
    del a
    assert lucid.cache_info().bytes_held == 0
    lucid.set_cache_limit(BLOCK)
    b = _cache.empty((SHAPE[0] * 2,), np.float32)
    del b
    assert lucid.cache_info().bytes_held == 0


def test_at_most_sixteen_blocks():
    arrays = [_cache.empty(SHAPE, np.float32) for _ in range(18)]
    del arrays
    info = lucid.cache_info()
    assert (info.blocks_held, info.bytes_held) == (16, 16 * BLOCK)


def test_empty_cache_returns_the_bytes_freed():
    arrays = [_cache.empty(SHAPE, np.float32) for _ in range(2)]
    keep = _cache.empty(SHAPE, np.float32)
    del arrays
    assert lucid.empty_cache() == 2 * BLOCK
    assert lucid.empty_cache() == 0
    assert lucid.cache_info().limit == 2 << 30  # unchanged
    keep[:] = 3.0  # a live array is not touched
    del keep
    assert lucid.cache_info().bytes_held == BLOCK


@pytest.mark.parametrize("bad", [1.5, True, "1", None])
def test_set_cache_limit_type_error(bad):
    with pytest.raises(TypeError, match="set_cache_limit expects an int >= 0"):
        lucid.set_cache_limit(bad)


def test_set_cache_limit_value_error():
    with pytest.raises(ValueError, match="got -1"):
        lucid.set_cache_limit(-1)
    assert lucid.cache_info().limit == 2 << 30


def test_huge_limits_mean_no_limit():
    lucid.set_cache_limit(2**80)
    assert lucid.cache_info().limit == 2**64 - 1
    lucid.set_cache_limit(np.int64(BLOCK))
    assert lucid.cache_info().limit == BLOCK


def test_threads_never_share_a_live_block():
    errors = []

    def work(seed):
        try:
            for i in range(20):
                a = _cache.empty(SHAPE, np.float32)
                a[::4096] = seed
                if not np.all(a[::4096] == seed):
                    errors.append((seed, i))
                del a
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert lucid.cache_info().blocks_held <= 4


def dirty_the_cache(nbytes):
    """Leave a freed block of ``nbytes`` full of NaN in the cache."""
    a = _cache.empty((nbytes // 4,), np.float32)
    a.fill(np.nan)
    where = address(a)
    del a
    return where


def test_kl_div_gradient_in_reused_memory():
    rng = np.random.default_rng(0)
    shape = (1024, 4096)  # 16 MiB of float32
    logits = rng.standard_normal(shape)
    log_q = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    p = rng.dirichlet(np.ones(shape[1]), size=shape[0])
    x = lucid.tensor(log_q.astype(np.float32), requires_grad=True)
    target = lucid.tensor(p.astype(np.float32))
    where = dirty_the_cache(BLOCK)
    kl_div(x, target, reduction="sum").backward()
    # The tape adopted the kernel's array, made in the dirty block: no copy.
    assert address(x.grad.numpy()) == where
    expected = -p.astype(np.float32).astype(np.float64)  # d/dx sum p (log p - x)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6, atol=0)


def test_distillation_gradient_in_reused_memory_with_a_mask():
    rng = np.random.default_rng(1)
    shape = (1024, 4096)
    s = rng.standard_normal(shape).astype(np.float32)
    t = rng.standard_normal(shape).astype(np.float32)
    keep = rng.random(shape[0]) < 0.7
    student = lucid.tensor(s, requires_grad=True)
    where = dirty_the_cache(BLOCK)
    distillation_loss(student, lucid.tensor(t), 2.0, mask=keep, reduction="sum").backward()
    assert address(student.grad.numpy()) == where
    # d/ds of T**2 KL(p || q) summed over kept rows: T (q - p), 0 where masked.
    def softmax(v):
        e = np.exp(v - v.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    expected = 2.0 * (softmax(s.astype(np.float64) / 2) - softmax(t.astype(np.float64) / 2))
    expected[~keep] = 0.0
    got = student.grad.numpy()
    assert not np.isnan(got).any()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    assert np.all(got[~keep] == 0.0)


def test_a_training_loop_reuses_one_block():
    rng = np.random.default_rng(2)
    shape = (1024, 4096)
    student = lucid.tensor(rng.standard_normal(shape).astype(np.float32), requires_grad=True)
    teacher = lucid.tensor(rng.standard_normal(shape).astype(np.float32))
    addresses = set()
    for _ in range(4):
        student.grad = None
        distillation_loss(student, teacher).backward()
        addresses.add(address(student.grad.numpy()))
    # Step k frees step k-1's gradient before it makes its own.
    assert len(addresses) == 1


@pytest.mark.parametrize("value, limit", [("0", 0), (" 1048576 ", 1 << 20), ("", 2 << 30)])
def test_environment_variable_sets_the_limit(value, limit):
    child = run_python("import lucid; print(lucid.cache_info().limit, "
                       "lucid.config()['cache_limit'])", LUCID_CACHE_LIMIT=value)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == [str(limit), str(limit)]


@pytest.mark.parametrize("value", ["-1", "2GiB", "1.5"])
def test_environment_variable_that_is_not_a_byte_count_is_named_and_ignored(value):
    child = run_python("import lucid; print(lucid.cache_info().limit)", LUCID_CACHE_LIMIT=value)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == [str(2 << 30)]
    assert f"RuntimeWarning: LUCID_CACHE_LIMIT={value!r} is not a byte count" in child.stderr
    assert "Traceback" not in child.stderr


def test_show_config_prints_the_limit(capsys):
    lucid.set_cache_limit(3 << 20)
    lucid.show_config()
    assert "grad cache:    3 MiB limit" in capsys.readouterr().out


def test_a_request_the_system_refuses_first_frees_the_kept_blocks():
    a = _cache.empty(SHAPE, np.float32)
    del a
    assert lucid.cache_info().bytes_held == BLOCK
    with pytest.raises(MemoryError):
        _cache.empty((1 << 50,), np.uint8)  # a petabyte: refused however much is freed
    assert lucid.cache_info().bytes_held == 0


def test_the_logits_gradient_of_a_weight_training_loop_is_reused():
    # Logits from weights: the logits' gradient is an intermediate of the
    # backward pass, freed by its end, whether the weights' .grad is set to
    # None or zeroed in place.
    rng = np.random.default_rng(3)
    inputs = lucid.tensor(rng.standard_normal((4096, 64)).astype(np.float32))
    teacher = lucid.tensor(rng.standard_normal((4096, 1024)).astype(np.float32))
    weights = lucid.zeros(64, 1024, requires_grad=True)  # logits of exactly BLOCK bytes
    reused = []
    for step in range(4):
        distillation_loss(inputs @ weights, teacher, 2.0).backward()
        with lucid.no_grad():
            weights -= 0.1 * weights.grad
        if step % 2:
            weights.grad.zero_()
        else:
            weights.grad = None
        reused.append(lucid.cache_info().reused)
        assert lucid.cache_info().bytes_held == BLOCK
    assert np.diff(reused).tolist() == [1, 1, 1]
