"""The HTML report of a run: `plots` draws, `page` gathers the files and writes report.html."""
