"""Flash sale: more visitors, higher conversion, deeper discounts — more orders, lower AOV."""

from typing import Annotated, Literal

from pydantic import Field

from .base import EventBase, Grid, Levers, register


@register
class FlashSale(EventBase):
    type: Literal["flash_sale"] = "flash_sale"
    uplift: Annotated[float, Field(gt=0.0, le=10.0)] = Field(0.3, description="extra traffic at peak (0.3 = +30 %)")
    conversion_uplift: Annotated[float, Field(ge=0.0, le=10.0)] = 0.3
    discount: Annotated[float, Field(ge=0.0, le=0.8)] = 0.2
    magnitude_field = "uplift"
    primary_kpi = "orders"
    primary_direction = "up"

    def apply(self, levers: Levers, grid: Grid) -> None:
        w = self.cell_weights(grid)
        levers.traffic *= 1 + self.uplift * w
        levers.conversion *= 1 + self.conversion_uplift * w
        levers.discount_add += self.discount * w
