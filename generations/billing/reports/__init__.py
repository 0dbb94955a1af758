"""The spending report, one module per part: month, elsewhere, projection, csv, chart."""
