"""The study runner (issue #22): one model of a study (groups of runs), one resume policy, one reader of the
runs' records, the reports built from them.

    spec             loads experiments/NAME.yaml (a paper table or figure) and study files
                     (experiments/converged/study.yaml, experiments/paper-length/study.yaml) into one model
    commands         the launcher, the train command and the measurements each kind of study needs
    runner           the resume decision for a run directory and the loop that runs a study's runs
    tables           measures from a done.json (both historical formats), number formatting, mean ± sd
    report_converged the generated section of docs/RESULTS.md
    report_full      docs/RESULTS-full-N.md (or runs/experiments/REPORT-partial.md for partial runs)
    facts            the "Differences from the paper" bullets of report_full
    cli              `scripts/study.py` list | run | summary | report
"""
