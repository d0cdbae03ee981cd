from django.shortcuts import render

# The sections of the dashboard. Their content arrives with the suites, orchestration and
# review capabilities; until then each page says how its data gets there.


def experiments_index(request):
    return render(request, "experiments/index.html", {"section": "experiments"})


def suites_index(request):
    return render(request, "experiments/suites.html", {"section": "suites"})


def review_index(request):
    return render(request, "experiments/review.html", {"section": "review"})
