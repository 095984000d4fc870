
pub(crate) fn reflens_describe_store_image_tasks_output_output_next_token(
    input: &crate::operation::describe_store_image_tasks::DescribeStoreImageTasksOutput,
) -> ::std::option::Option<&::std::string::String> {
    let input = match &input.next_token {
        ::std::option::Option::None => return ::std::option::Option::None,
        ::std::option::Option::Some(t) => t,
    };
    ::std::option::Option::Some(input)
}

pub(crate) fn lens_describe_store_image_tasks_output_output_store_image_task_results(
    input: crate::operation::describe_store_image_tasks::DescribeStoreImageTasksOutput,
) -> ::std::option::Option<::std::vec::Vec<crate::types::StoreImageTaskResult>> {
    let input = input.store_image_task_results?;
    ::std::option::Option::Some(input)
}
