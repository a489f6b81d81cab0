"""One sync run: read a page, evaluate, plan, apply, journal, commit the cursor."""
