use sea_orm::entity::prelude::*;

/// One slot of a status list, owned by one session; `invalid` is its bit.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "status_slots")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub list_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub idx: i32,
    pub session_id: Option<Uuid>,
    pub invalid: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
