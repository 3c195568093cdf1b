"""The seed's house-prices demo in Python: a spiking regressor against its non-spiking baseline
over three seeded 80/20 splits (as examples/house_prices.cpp and
`nmsnn train --data data/csv/house_price_data.csv --task regression --target house_price`).
Run: python examples/python/house_prices.py
"""
import os
import sys

import numpy as np

import nmsnn

HERE = os.path.dirname(os.path.abspath(__file__))
CSV = os.path.join(HERE, "..", "..", "data", "csv", "house_price_data.csv")


def main(epochs=100, seeds=(1, 2, 3), verbose=0):
    d = nmsnn.read_csv(CSV, target="house_price", task="regression")
    X, y = d["x"], d["y"][:, 0]
    scores = {"snn": [], "mlp": []}
    for seed in seeds:
        train, _, test = nmsnn.split_indices(len(y), test_fraction=0.2, seed=seed)
        for name in scores:
            reg = nmsnn.SpikingRegressor(model=name, epochs=epochs, random_state=seed, verbose=verbose)
            reg.fit(X[train], y[train])
            scores[name].append(reg.score(X[test], y[test]))
    for name, r2 in scores.items():
        print(f"{name}: mean test R2 {np.mean(r2):.3f} ({', '.join(f'{v:.3f}' for v in r2)})")
    return scores


if __name__ == "__main__":
    main(epochs=int(sys.argv[1]) if len(sys.argv) > 1 else 100)
