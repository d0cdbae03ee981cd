from django.shortcuts import render

# The sections of the dashboard whose content arrives with the orchestration and review
# capabilities; until then each page says how its data gets there.


def experiments_index(request):
    return render(request, "experiments/index.html", {"section": "experiments"})


def review_index(request):
    return render(request, "experiments/review.html", {"section": "review"})
