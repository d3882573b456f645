"""How values are shown to people on the pages: times in the viewer's zone, money by
currency, statuses as badges, counts of matches. JSON and CSV keep the raw values."""
