"""Closer's own Rasa NLU graph components (config.yml names them by module path, e.g. `nlu.featurizers.E5Featurizer`).

They run inside the Rasa server's environment (`.venv-rasa`, Python 3.10, rasa 3.6.21), not in the action server's:
keep this package free of imports from `bot/` beyond `bot/contracts/`, and valid on Python 3.10.

Importing the package (Rasa does, for config.yml's components: `rasa run`, `rasa train`, `rasa test`) limits numpy's
BLAS (OpenBLAS, one pool for the process) to one thread. The server's numpy work is on tiny arrays (TED's tracker
features, the SVM's 34-intent coupling) between TensorFlow's threads and the e5 engine's: waking OpenBLAS's second
thread on a busy core cost more than it saved — per product-search turn, the SVM's 34×34 solve took ≈ 3 ms instead of
10 µs and TED's prediction a third more (py-spy on the REST turn of bench/turn_latency.py).
"""

import numpy  # noqa: F401  (loads OpenBLAS: threadpoolctl limits the libraries already loaded)
import threadpoolctl

threadpoolctl.threadpool_limits(limits=1, user_api="blas")
