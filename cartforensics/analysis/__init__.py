"""What the replays mean: the service's counters and rates (``metrics``), ranked problems with
evidence (``findings``), fleet-wide counts over a dataset (``fleet``) and the analyst's notes
on lines (``notes``).
"""
