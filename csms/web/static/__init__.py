"""The dashboard's stylesheet (a package so that wheels ship ``app.css``)."""
