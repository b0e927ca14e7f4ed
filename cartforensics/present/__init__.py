"""What a person sees: charts (``plots``), escaping of untrusted text (``escaping``), the report
(``report``, computed in chunks by ``report_chunks``; notes in it by ``notes_report``) and the
notebook widgets (``widgets``).
"""
