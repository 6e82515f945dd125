"""``@task.azerion_images``: a TaskFlow function returns the prompt(s), the task generates the images.

The decorated function runs first, in the task; what it returns (one prompt, or a list of them)
becomes the ``prompt`` of an :class:`~airflow_provider_azerion.operators.image_generation.
ImageGenerationOperator`, whose other arguments the decorator takes::

    @task.azerion_images(output_path="file:///tmp/azerion-images/", extra_params={"size": "512x512"})
    def banners(theme: str) -> list[str]:
        return [f"a banner about {theme}", f"a poster about {theme}"]

    banners("autumn")  # XCom: the operator's result dict
    banners.expand(theme=["autumn", "winter"])  # one mapped task instance per theme

Imports only the operator's light module and Airflow's TaskFlow base: DAG files import this on
every parse.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.bases.decorator import (
    DecoratedOperator,
    TaskDecorator,
    determine_kwargs,
    task_decorator_factory,
)
from airflow.sdk.definitions._internal.types import NOTSET, SET_DURING_EXECUTION, ArgNotSet
from airflow.sdk.definitions.context import context_merge

from airflow_provider_azerion.operators.image_generation import ImageGenerationOperator

if TYPE_CHECKING:
    from airflow.sdk import Context, ObjectStoragePath

#: Longest excerpt of a rejected return value quoted in an error message.
_MAX_QUOTE = 200


class _AzerionImagesDecoratedOperator(DecoratedOperator, ImageGenerationOperator):
    """Run a Python callable for the prompt(s), then generate and store their images.

    The callable's return value is used as the prompt(s) as it is: it is not rendered as a Jinja
    template (prompts may come from data, and the callable has the context already). Every other
    templated field of both operators (``op_args``, ``op_kwargs``, ``output_path``, ``model``...)
    is rendered before the callable runs. The rendered-template view shows the returned prompts.

    :param python_callable: returns one prompt (str) or a list of prompts (list of str).
    :param op_args: positional arguments of the callable (templated).
    :param op_kwargs: keyword arguments of the callable (templated).
    """

    template_fields: Sequence[str] = (
        *DecoratedOperator.template_fields,
        *ImageGenerationOperator.template_fields,
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        **DecoratedOperator.template_fields_renderers,
        **ImageGenerationOperator.template_fields_renderers,
    }
    custom_operator_name: str = "@task.azerion_images"
    # Send the rendered fields again after execute, so the UI shows the prompts the callable returned.
    overwrite_rtif_after_execution: bool = True

    def __init__(
        self,
        *,
        python_callable: Callable,
        op_args: Collection[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "prompt" in kwargs:
            raise TypeError(
                f"{self.custom_operator_name} takes its prompt(s) from what the decorated function "
                "returns; do not pass prompt="
            )
        super().__init__(
            python_callable=python_callable,
            op_args=op_args,
            op_kwargs=op_kwargs,
            prompt=SET_DURING_EXECUTION,
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        """Call the function for the prompt(s), check them, then run the operator with them."""
        context_merge(context, self.op_kwargs)
        kwargs = determine_kwargs(self.python_callable, self.op_args, context)
        self.prompt = self._checked_prompts(self.python_callable(*self.op_args, **kwargs))
        # DecoratedOperator.execute, then ImageGenerationOperator.execute (the MRO's next).
        return super().execute(context)

    def _checked_prompts(self, returned: Any) -> str | list[str]:
        """``returned`` if it is a str, as a list if it is a sequence of str; otherwise fail.

        :raises AzerionValidationError: naming the function and what it returned; nothing is sent.
        """
        from airflow_provider_azerion.exceptions import AzerionValidationError

        if isinstance(returned, str):
            return returned
        problem = None
        if isinstance(returned, Sequence) and not isinstance(returned, (bytes, bytearray)):
            prompts = list(returned)
            if not prompts:
                problem = f"an empty {type(returned).__name__}; return at least one prompt"
            for index, item in enumerate(prompts):
                if not isinstance(item, str):
                    problem = (
                        f"a {type(returned).__name__} whose item {index} is a {type(item).__name__}: "
                        f"{_quote(item)}"
                    )
                    break
            if problem is None:
                return prompts
        else:
            problem = f"a {type(returned).__name__}: {_quote(returned)}"
        name = getattr(self.python_callable, "__qualname__", repr(self.python_callable))
        raise AzerionValidationError(
            f"{self.custom_operator_name} function {name}() must return a prompt (str) or a list of "
            f"prompts (list of str); it returned {problem}. Nothing was sent to the API."
        )


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_QUOTE else text[: _MAX_QUOTE - 3] + "..."


def azerion_images_task(
    python_callable: Callable | None = None,
    *,
    output_path: str | ObjectStoragePath | ArgNotSet = NOTSET,
    model: str | ArgNotSet = NOTSET,
    style: str | ArgNotSet | None = NOTSET,
    response_format: str | ArgNotSet = NOTSET,
    n: int | ArgNotSet | None = NOTSET,
    extra_params: dict[str, Any] | ArgNotSet | None = NOTSET,
    conn_id: str | ArgNotSet = NOTSET,
    output_conn_id: str | ArgNotSet | None = NOTSET,
    max_active_requests: int | ArgNotSet = NOTSET,
    overwrite: bool | ArgNotSet = NOTSET,
    max_prompts: int | ArgNotSet = NOTSET,
    max_images: int | ArgNotSet | None = NOTSET,
    log_each_image: bool | ArgNotSet | None = NOTSET,
    **kwargs: Any,
) -> TaskDecorator:
    """Wrap a function returning prompt(s) into an image generation task (``@task.azerion_images``).

    The function returns one prompt (str) or a list of prompts (list of str); the task generates
    and stores their images exactly as :class:`~airflow_provider_azerion.operators.image_generation.
    ImageGenerationOperator` does and returns its result dict (XCom). Call the decorated function
    with its arguments (plain values or upstream outputs), or map it with ``.expand(...)``.

    The keyword arguments are the operator's, but ``prompt``; see the operator for each one.
    ``output_path`` is required (here or in ``default_args``). Arguments left out take the
    operator's defaults or ``default_args``. Other keyword arguments (``task_id``, ``retries``,
    ``pool``, ``outlets``, ``multiple_outputs``...) go to Airflow as for any ``@task``.

    ``@task.azerion_images(...)`` and ``@azerion_images_task(...)`` are the same decorator; the
    latter lets a type checker check these keyword arguments.

    :param python_callable: the function to decorate (when used without parentheses).
    """
    arguments: dict[str, Any] = {
        "output_path": output_path,
        "model": model,
        "style": style,
        "response_format": response_format,
        "n": n,
        "extra_params": extra_params,
        "conn_id": conn_id,
        "output_conn_id": output_conn_id,
        "max_active_requests": max_active_requests,
        "overwrite": overwrite,
        "max_prompts": max_prompts,
        "max_images": max_images,
        "log_each_image": log_each_image,
    }
    given = {name: value for name, value in arguments.items() if value is not NOTSET}
    return task_decorator_factory(
        python_callable=python_callable,
        decorated_operator_class=_AzerionImagesDecoratedOperator,
        **given,
        **kwargs,
    )
