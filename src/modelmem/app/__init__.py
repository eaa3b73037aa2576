"""The application layer: one question, one answer, whichever door asks.

Between the doors (the command line, the web API, the Python API) and the pure core
(:mod:`modelmem.model`, :mod:`modelmem.memory`, :mod:`modelmem.hardware`): typed requests
that hold every option and default once (:mod:`.requests`), the policies that depend on
the model (:mod:`.inference`, :mod:`.training`), `fit` and `plan` as a request plus
devices (:mod:`.fit`, :mod:`.planning`), `measure` of the same request
(:mod:`.measuring`), and the entry points every door calls (:mod:`.entry`).

The Python API (:mod:`modelmem.api`, re-exported by :mod:`modelmem`)::

    import modelmem
    r = modelmem.inference("llama-3.1-8b", context=8192, kv_dtype="fp8")
    r.total_bytes, r.components, r.to_dict()     # to_dict() == `inference ... --json`
    modelmem.fit("llama-3.1-70b", device="H100-SXM", count=8, mode="train", fsdp="full-shard")

Options are named like the command line's long options with ``-`` -> ``_``.
"""
