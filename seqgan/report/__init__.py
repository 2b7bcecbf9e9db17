"""Looking at and listening to runs: learning curves (:mod:`.plots`), audio (:mod:`.audio`),
TensorBoard (:mod:`.tensorboard`), the progress animation (:mod:`.animate`) and the
self-contained HTML report (:mod:`.html`). Heavy imports (matplotlib, Pillow) happen inside
the functions that need them."""
