# The two commands a newcomer needs; see README.md.
.PHONY: demo test

demo:  ## install, load sample data and serve the demo on http://127.0.0.1:8000/
	@scripts/demo.sh

test:  ## install and run every test (again on PostgreSQL + Redis when DATABASE_URL and REDIS_URL are set)
	@scripts/test.sh $(ARGS)
