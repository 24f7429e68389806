"""Concurrent run() calls from Python threads on one session give the serial results."""
import sys
import threading

import numpy as np

import nibble


def test_concurrent_runs_match_serial(small_model):
    options = nibble.SessionOptions()
    options.intra_op_num_threads = 2
    session = nibble.InferenceSession(small_model, options)
    name = session.get_inputs()[0].name
    shape = session.get_inputs()[0].shape
    feeds = [{name: np.random.default_rng(seed).uniform(0, 1, shape).astype(np.float32)}
             for seed in range(4)]
    serial = [session.run(None, feed)[0] for feed in feeds]

    rounds = 2
    results = {}
    errors = []
    start = threading.Barrier(len(feeds))

    def worker(index):
        try:
            start.wait()
            results[index] = [session.run(None, feeds[index])[0] for _ in range(rounds)]
        except Exception as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(feeds))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for index, expected in enumerate(serial):
        for got in results[index]:
            np.testing.assert_array_equal(got, expected)
    # The inputs differ, so equal results are not a coincidence of identical feeds.
    assert not np.array_equal(serial[0], serial[1])


def test_run_releases_the_gil(small_model):
    """With a thread switch interval far longer than the test, the main thread only gets the GIL
    back while the worker is inside run() if run() releases it."""
    session = nibble.InferenceSession(small_model)
    feed = {"images": np.zeros(session.get_inputs()[0].shape, np.float32)}
    started, done = threading.Event(), []

    def worker():
        started.set()
        # Several runs, so a busy machine that is slow to schedule the main thread still lets it
        # in while the worker is inside one of them.
        for _ in range(10):
            session.run(None, feed)
        done.append(True)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1000)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        started.wait()
        ran_during_run = not done
        thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert ran_during_run
