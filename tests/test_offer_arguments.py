"""A model app's offer says how the studio's request maps onto the model's own arguments."""

from generations.providers.offers import fill_arguments, offer_problems

KLING = {
    "seconds": ["5", "10"],
    "sizes": ["1280x720", "720x1280"],
    "arguments": {
        "prompt": "{prompt}",
        "duration": "{seconds}",
        "aspect_ratio": "{ratio}",
        "image_url": "{image}",
        "cfg_scale": 0.5,
        "negative_prompt": "blur, {prompt}",
    },
}


def test_an_offer_may_carry_an_argument_map():
    assert offer_problems({"fal-ai/kling-video/v2.1/master/text-to-video": KLING}) == []


def test_an_argument_map_of_the_wrong_shape_is_refused():
    for arguments in ([], {"": "x"}, {"duration": ["5"]}, {"duration": None}):
        problems = offer_problems({"m": {**KLING, "arguments": arguments}})
        assert problems and '"arguments"' in problems[0]


def test_arguments_are_filled_keeping_the_value_type_and_dropping_what_is_not_asked_for():
    values = {"prompt": "A fox", "seconds": 5, "ratio": "16:9", "image": None}
    assert fill_arguments(KLING["arguments"], values) == {
        "prompt": "A fox",
        "duration": 5,
        "aspect_ratio": "16:9",
        "cfg_scale": 0.5,
        "negative_prompt": "blur, A fox",
    }


def test_other_braces_in_an_argument_are_the_admins_text_and_never_break_a_create():
    arguments = {"style": "a {style} shot of {prompt}", "broken": "{", "image_note": "see {image}"}
    filled = fill_arguments(arguments, {"prompt": "A fox", "image": None})
    assert filled == {"style": "a {style} shot of A fox", "broken": "{", "image_note": "see {image}"}
