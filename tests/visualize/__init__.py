"""Status, plots and the HTML report (evo.visualize)."""
